# Two entry points for a fresh clone: `make demo` (the bundled example end to end) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
SPEC   ?= deploy_specs/calibration_status_classification.py
DATA    = data/synthetic/calibration_status_classification

.PHONY: install demo data data-full data-lidar test bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[cpu,dev]"
	# reference for the detection3d evaluator's equality test only; --no-deps: its OpenCV and numpy<2 pins are not needed
	$(BIN)/python -m pip install -q --no-deps nuscenes-devkit==1.2.0 pyquaternion==0.9.9
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

data: $(DATA)/info_val.pkl $(SYN)/yolox_traffic_light/annotations_val.json $(SYN)/yolox_road/annotations_val.json \
	$(SYN)/mobilenetv2_traffic_light/annotations_val.json $(SYN)/lidar/info_val.pkl

data-full: $(BIN)/.installed
	$(BIN)/python -m pytest_autoware_deploy.models.calibration_status_classification.synthetic \
		--out $(DATA)_full --height 1860 --width 2880 --count 20

demo: data
	$(BIN)/autoware-deploy $(SPEC) --work-dir work_dirs/calibration_status_classification \
		-- --benchmark-json=work_dirs/calibration_status_classification/benchmark.json

test: install
	$(BIN)/python -m pytest -n 2 -p no:cacheprovider

# Measurements behind docs/performance.md (about 1.5 min on 2 cores); JSON results in $(BENCH_OUT).
BENCH_OUT ?= work_dirs/benchmarks
bench: data
	mkdir -p $(BENCH_OUT)
	$(BIN)/python benchmarks/harness_overhead.py --json $(BENCH_OUT)/harness_overhead.json
	$(BIN)/python benchmarks/eval_throughput.py --json $(BENCH_OUT)/eval_throughput.json
	$(BIN)/python benchmarks/cache_warm_cold.py --json $(BENCH_OUT)/cache_warm_cold.json

clean:
	rm -rf work_dirs $(DATA) $(SYN)/yolox_traffic_light $(SYN)/yolox_road $(SYN)/mobilenetv2_traffic_light $(SYN)/lidar
