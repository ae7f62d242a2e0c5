# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PY      := python3.11
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
DEMO_OUT ?= reports/demo
# `make bench` generates this dataset once (python -m data_fixtures), then benchmarks it.
BENCH_ROOT ?= reports/bench_dataset
BENCH_FIXTURE ?= --episodes 200 --cameras 2 --episodes-per-file 50
BENCH_JSON ?= reports/bench.json

.PHONY: setup ffmpeg chromium test test-slow demo lint bench clean

setup: $(STAMP) ffmpeg

# Reinstall only when the pins or the package metadata change.
$(STAMP): pyproject.toml constraints.txt
	@command -v $(PY) >/dev/null || { echo "need $(PY) on PATH"; exit 1; }
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip >/dev/null
	$(VPY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# TorchCodec needs FFmpeg's shared libraries; install them through apt only when it cannot load them.
ffmpeg: $(STAMP)
	@$(VPY) -c "import torchcodec.decoders" 2>/dev/null || { \
		echo "TorchCodec cannot load FFmpeg: installing it with apt"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null && \
		$(VPY) -c "import torchcodec.decoders" ; }

# The browser test of the offline report needs Debian's Chromium; only the slow suite uses it.
chromium:
	@command -v chromium >/dev/null || { \
		echo "installing Chromium with apt for the offline-report browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: setup
	$(VPY) -m pytest -q

test-slow: setup chromium
	$(VPY) -m pytest -q -m slow

# Ends with where the report is and how to run the CLI, whether or not every notebook passed.
demo: setup
	@$(VENV)/bin/lerobot-inspect demo --out $(DEMO_OUT); status=$$?; \
	echo ""; \
	echo "Report: file://$(abspath $(DEMO_OUT))/index.html"; \
	echo "CLI:    $(VENV)/bin/lerobot-inspect --help   (or: source $(VENV)/bin/activate; lerobot-inspect --help)"; \
	exit $$status

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	@test -f $(BENCH_ROOT)/meta/info.json || { \
		echo "generating the bench dataset: python -m data_fixtures $(BENCH_ROOT) $(BENCH_FIXTURE)"; \
		rm -rf $(BENCH_ROOT).partial && \
		$(VPY) -m data_fixtures $(BENCH_ROOT).partial $(BENCH_FIXTURE) && mv $(BENCH_ROOT).partial $(BENCH_ROOT); }
	$(VENV)/bin/lerobot-inspect bench $(BENCH_ROOT) --json $(BENCH_JSON)

clean:
	rm -rf $(VENV) reports
