# Two entry points for a fresh clone: `make demo` (the bundled example end to end) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
SPEC   ?= deploy_specs/calibration_status_classification.py
DATA    = data/synthetic/calibration_status_classification

# The environment comes from the committed lock (requirements/lock.txt, CPython 3.11 on x86-64 Linux: what CI runs),
# generated from pyproject.toml by pip-tools (`make lock`); the package's own ranges stay loose for users.
LOCK    = requirements/lock.txt
LOCK_IN = requirements/lock.in
NODEPS  = requirements/reference-nodeps.txt
LOCK_PY = $(shell sed -n 's/.*pip-compile with Python \([0-9.]*\).*/\1/p' $(LOCK))
EXTRAS  = cpu,dev,rtx

.PHONY: install lock canary demo data data-full data-lidar data-blip2 data-families test bench clean

# Rebuilt when pyproject.toml or a lock file changes: pip moves every package to its pin (removed ones stay; for an
# exact copy, rm -rf .venv first).
$(BIN)/.installed: pyproject.toml $(LOCK) $(NODEPS)
	@$(PYTHON) -c 'import sys; v = "%d.%d" % sys.version_info[:2]; sys.exit(None if v == "$(LOCK_PY)" else \
		"$(LOCK) is locked for Python $(LOCK_PY), $(PYTHON) is Python " + v + \
		": run make with PYTHON=python$(LOCK_PY), or make lock with this interpreter")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c $(LOCK) pip
	$(BIN)/python -m pip install -q -c $(LOCK) --build-constraint $(LOCK) -e ".[$(EXTRAS)]"
	# reference for the detection3d evaluator's equality test only (see $(NODEPS))
	$(BIN)/python -m pip install -q --no-deps -r $(NODEPS)
	touch $@

install: $(BIN)/.installed

$(DATA)/info_val.pkl: $(BIN)/.installed
	$(BIN)/python -m pytest_autoware_deploy.models.calibration_status_classification.synthetic --out $(DATA)

# The 2D families' val splits (COCO json + PNG, about 2 s together); training splits come from their train.py.
SYN = data/synthetic
$(SYN)/yolox_traffic_light/annotations_val.json: $(BIN)/.installed
	$(BIN)/python -m pytest_autoware_deploy.models.yolox.synthetic --scene traffic_light --out $(SYN)/yolox_traffic_light
$(SYN)/yolox_road/annotations_val.json: $(BIN)/.installed
	$(BIN)/python -m pytest_autoware_deploy.models.yolox.synthetic --scene road --out $(SYN)/yolox_road
$(SYN)/mobilenetv2_traffic_light/annotations_val.json: $(BIN)/.installed
	$(BIN)/python -m pytest_autoware_deploy.models.mobilenetv2_traffic_light.synthetic --out $(SYN)/mobilenetv2_traffic_light

# The lidar families' val split (60 ray-cast sweeps in T4 info format, about 2 s); train.py writes the training split.
$(SYN)/lidar/info_val.pkl: $(BIN)/.installed
	$(BIN)/python -m pytest_autoware_deploy.models.lidar_common.synthetic --out $(SYN)/lidar

data-lidar: $(SYN)/lidar/info_val.pkl

# The newer families' val splits (seconds each): FRNet's labelled sweeps, Swin's shapes, StreamPETR's camera
# sequences, BLIP-2's captioned images. BEVFusion-L and CenterPoint-ConvNeXtPC read the lidar split above.
$(SYN)/frnet/info_val.pkl: $(BIN)/.installed
	$(BIN)/python -m pytest_autoware_deploy.models.frnet.synthetic --out $(SYN)/frnet --splits val
$(SYN)/swin/annotations_val.json: $(BIN)/.installed
	$(BIN)/python -m pytest_autoware_deploy.models.swin.synthetic --out $(SYN)/swin --splits val
$(SYN)/streampetr/info_val.pkl: $(BIN)/.installed
	$(BIN)/python -m pytest_autoware_deploy.models.streampetr.synthetic --out $(SYN)/streampetr --splits val
$(SYN)/blip2/captions_val.npz: $(BIN)/.installed
	$(BIN)/python -m pytest_autoware_deploy.models.blip2.synthetic --out $(SYN)/blip2
$(SYN)/bevfusion_camera_lidar/info_val.pkl: $(BIN)/.installed
	$(BIN)/python -m pytest_autoware_deploy.models.bevfusion_camera_lidar.synthetic --out $(SYN)/bevfusion_camera_lidar

$(SYN)/glip/grounding_val.npz: $(BIN)/.installed
	$(BIN)/python -m pytest_autoware_deploy.models.glip.synthetic --out $(SYN)/glip

data-blip2: $(SYN)/blip2/captions_val.npz
data-families: $(SYN)/frnet/info_val.pkl $(SYN)/swin/annotations_val.json $(SYN)/streampetr/info_val.pkl \
	$(SYN)/blip2/captions_val.npz $(SYN)/bevfusion_camera_lidar/info_val.pkl $(SYN)/glip/grounding_val.npz

data: $(DATA)/info_val.pkl $(SYN)/yolox_traffic_light/annotations_val.json $(SYN)/yolox_road/annotations_val.json \
	$(SYN)/mobilenetv2_traffic_light/annotations_val.json $(SYN)/lidar/info_val.pkl data-families

data-full: $(BIN)/.installed
	$(BIN)/python -m pytest_autoware_deploy.models.calibration_status_classification.synthetic \
		--out $(DATA)_full --height 1860 --width 2880 --count 20

demo: data
	$(BIN)/autoware-deploy $(SPEC) --work-dir work_dirs/calibration_status_classification \
		-- --benchmark-json=work_dirs/calibration_status_classification/benchmark.json

test: data  # the bundled specs' synthetic val splits (seconds): engine tests collect every bundled spec
	$(BIN)/python -m pytest -n 2 -p no:cacheprovider

# Regenerate $(LOCK) from pyproject.toml + $(LOCK_IN) with pip-tools (in its own venv, so the tool's own packages
# never enter the tested environment). Existing pins are kept where they still satisfy pyproject.toml;
# `make lock UPGRADE=1` moves every package to its newest allowed version. Run it with the Python CI uses.
LOCK_VENV ?= build/lock-venv
PIP_TOOLS ?= pip-tools==7.6.2
lock:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install -q $(if $(wildcard $(LOCK)),-c $(LOCK)) pip $(PIP_TOOLS)
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet $(if $(UPGRADE),--upgrade) \
		--extra cpu --extra dev --extra rtx --allow-unsafe --strip-extras \
		--no-emit-options --output-file $(LOCK) pyproject.toml $(LOCK_IN)

# Canary: the test suite against the newest versions pyproject.toml allows (no lock, fresh venv, eager upgrades),
# derandomized like CI. Expected to break first when a dependency drifts; it never gates main. It prints which
# packages moved off the lock; torch stays at the [cpu] extra's pin (the CPU wheel), the package's own range.
CANARY_VENV ?= build/canary-venv
NORM = awk -F'==' '/^[A-Za-z0-9]/ {n = tolower($$1); gsub(/[_.]/, "-", n); print n "==" $$2}' | sort
canary:
	rm -rf $(CANARY_VENV)
	$(PYTHON) -m venv $(CANARY_VENV)
	$(CANARY_VENV)/bin/python -m pip install -q --upgrade pip
	$(CANARY_VENV)/bin/python -m pip install -q --upgrade --upgrade-strategy eager -e ".[$(EXTRAS)]"
	$(CANARY_VENV)/bin/python -m pip install -q --no-deps -r $(NODEPS)
	@echo "canary: packages whose newest version differs from $(LOCK) (< lock, > canary):"
	@grep -v '^ *#' $(LOCK) | $(NORM) > $(CANARY_VENV)/lock.txt
	@$(CANARY_VENV)/bin/python -m pip list --format=freeze --exclude-editable | $(NORM) > $(CANARY_VENV)/newest.txt
	@diff $(CANARY_VENV)/lock.txt $(CANARY_VENV)/newest.txt | grep '^[<>]' || echo "  none"
	CI=true $(CANARY_VENV)/bin/python -m pytest -n 2 -p no:cacheprovider

# Measurements behind docs/performance.md (about 2.5 min on 2 cores); JSON results in $(BENCH_OUT).
BENCH_OUT ?= work_dirs/benchmarks
bench: data
	mkdir -p $(BENCH_OUT)
	$(BIN)/python benchmarks/harness_overhead.py --json $(BENCH_OUT)/harness_overhead.json
	$(BIN)/python benchmarks/eval_throughput.py --json $(BENCH_OUT)/eval_throughput.json
	$(BIN)/python benchmarks/cache_warm_cold.py --json $(BENCH_OUT)/cache_warm_cold.json
	$(BIN)/python benchmarks/gate_noise.py --json $(BENCH_OUT)/gate_noise.json

clean:
	rm -rf work_dirs $(DATA) $(SYN)/yolox_traffic_light $(SYN)/yolox_road $(SYN)/mobilenetv2_traffic_light $(SYN)/lidar
