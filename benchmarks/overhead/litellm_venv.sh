#!/usr/bin/env bash
# A side venv in which LiteLLM's proxy imports, for `thinkgate bench overhead --litellm-python VENV/bin/python`.
#
#   bash benchmarks/overhead/litellm_venv.sh /tmp/litellm-proxy-venv [.venv/bin/python]
#
# The project's venv has litellm (the `litellm` extra) but not its proxy's server dependencies, and
# `pip install 'litellm[proxy]'` cannot resolve here (it pins a `litellm-proxy` release the package index does
# not have). So: a new venv that sees the project venv's packages through a .pth file (litellm itself, uvicorn,
# uvloop, starlette, ...) plus the few packages `import litellm.proxy.proxy_server` needs, installed into the
# side venv only; the project venv is not touched. Versions as tested with litellm 1.110.2.
set -euo pipefail
venv=${1:?usage: litellm_venv.sh VENV [PROJECT_PYTHON]}
project_python=${2:-.venv/bin/python}
site=$("$project_python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$project_python" -m venv "$venv"
side=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$site" > "$side/thinkgate-project-venv.pth"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  "fastapi>=0.136.3,<1.0" "backoff>=2.2.1,<3.0" "orjson>=3.11.6,<4.0" "apscheduler>=3.11.2,<4.0" \
  "python-multipart>=0.0.27,<1.0" "pyjwt>=2.13.0,<3.0" "cryptography>=49.0.0,<51.0" "pynacl>=1.6.2,<2.0" \
  "rq>=2.7.0,<3.0" "fastapi-sso>=0.19.0,<1.0" "websockets>=15.0.1,<16.0" "gunicorn>=23.0.0,<24.0" \
  "semver>=3.0.4,<4" "expression>=5.6.0,<6.0" "mcp>=2.3.0,<3" "soundfile>=0.12.1,<1.0"
LITELLM_LOCAL_MODEL_COST_MAP=True "$venv/bin/python" -c "import litellm.proxy.proxy_server" 2>/dev/null
echo "LiteLLM's proxy imports: use --litellm-python $venv/bin/python"
