# Sourced by the tools/gpu-*.sh scripts (never run alone). Expects PY (the Python) and WD (the work folder).
# small_split SPEC -> "KEY=PATH": the --deploy-cfg-options item pointing SPEC at a small split of its family's data
# (FAMILY['synthetic'], FRAMES frames, default 8), written under $WD/data/SPEC.
small_split() {
  $PY - "$1" "$WD/data/$1" "${FRAMES:-8}" <<'PY'
import importlib, sys
from mmengine.config import Config
from pytest_autoware_deploy.registry import small_split_ref
family = Config.fromfile(f"deploy_specs/{sys.argv[1]}.py").get("family")  # no validation: the data is not there yet
module, _, func = small_split_ref(family).partition(":")
key, path = getattr(importlib.import_module(module), func)(sys.argv[2], int(sys.argv[3]))
print(f"{key}={path}")
PY
}
