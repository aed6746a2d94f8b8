# Two entry points for a fresh clone: `make demo` (the bundled example end to end) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
SPEC   ?= deploy_specs/calibration_status_classification.py
DATA    = data/synthetic/calibration_status_classification

.PHONY: install demo data data-full test clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[cpu,dev]"
	touch $@

install: $(BIN)/.installed

$(DATA)/info_val.pkl: $(BIN)/.installed
	$(BIN)/python -m pytest_autoware_deploy.models.calibration_status_classification.synthetic --out $(DATA)

data: $(DATA)/info_val.pkl

data-full: $(BIN)/.installed
	$(BIN)/python -m pytest_autoware_deploy.models.calibration_status_classification.synthetic \
		--out $(DATA)_full --height 1860 --width 2880 --count 20

demo: data
	$(BIN)/autoware-deploy $(SPEC) --work-dir work_dirs/calibration_status_classification \
		-- --benchmark-json=work_dirs/calibration_status_classification/benchmark.json

test: install
	$(BIN)/python -m pytest -n 2 -p no:cacheprovider

clean:
	rm -rf work_dirs $(DATA)
