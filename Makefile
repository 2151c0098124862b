# childguard: every target sets up what it needs on a fresh machine.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PHOTOS := .cache/photos/.ready
FFMPEG := .cache/.ffmpeg-dev
CHROMIUM := .cache/.chromium

.PHONY: help venv jsvendor build photos demo test test-hostile fuzz-kernels wheel-smoke wheel lint bench bench-hash bench-match bench-crawl bench-bank-import bench-api bench-demo bench-robustness bench-robustness-held-out bench-robustness-fpr bench-startup bench-votes bench-originals bench-shifted bench-picture bench-shards bench-video bench-hotline bench-scale screenshots clean

help:
	@echo "make demo              run the main job on embedded defaults (SQLite, local files)"
	@echo "make test              set everything up and run the whole suite"
	@echo "make test-hostile      the long tier of the hostile-input campaign (docs/security.md)"
	@echo "make fuzz-kernels      the C kernels under ASan+UBSan, seeded mutation fuzzing (docs/security.md)"
	@echo "make wheel             build the wheel into dist/ (make wheel-smoke: and try it installed)"
	@echo "make lint              ruff, mypy and the import-linter contracts"
	@echo "make screenshots       the browser tests' screenshots into docs/img (a test run keeps them in a temp folder)"
	@echo "make bench             hash, match, crawl, bank-import, demo, video and hotline benchmarks (docs/benchmarks.md)"
	@echo "make bench-api         the service over HTTP at 1M hashes, 1 and 2 workers (several minutes)"
	@echo "make bench-scale       scan on a local Dask cluster, 1 and 2 workers, against no cluster (5,000 files)"
	@echo "make bench-robustness  the robustness benchmark, 49 transforms (about 40 minutes on 2 cores)"
	@echo "make bench-robustness-held-out  the same on the photos the full run leaves out"
	@echo "make bench-robustness-fpr  false positives on 50,000 distractor queries per group (long: see docs/robustness.md)"
	@echo "make bench-votes       the protected search's vote kernel on each of its paths (scalar, AVX2, AVX-512)"
	@echo "make bench-originals   photos registered from their originals, re-posts queried from their bytes"
	@echo "make bench-shifted     known-abuse views undoing off-centre crops, measured (not shipped)"
	@echo "make bench-picture     photos that are no JPEG: the picture from the fast path's decode"

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or set PYTHON=" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip setuptools wheel

# FFmpeg and its development libraries from Debian: vpdq builds against them, the video tests
# and benchmark make their clips with the ffmpeg command. Installed only when missing.
$(FFMPEG):
	@if pkg-config --exists libavcodec libavformat libswscale 2>/dev/null && command -v ffmpeg >/dev/null 2>&1; then \
		echo "ffmpeg and its dev libraries are present"; \
	else \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg pkg-config cmake g++ \
			libavcodec-dev libavformat-dev libavdevice-dev libavutil-dev libswscale-dev \
			libswresample-dev libavfilter-dev; \
	fi
	@mkdir -p $(dir $(FFMPEG)) && touch $(FFMPEG)

# Debian's Chromium: the browser tests (tests/web/) drive it through Playwright's
# executable_path (Playwright's own browser download is never used). Installed only when missing.
$(CHROMIUM):
	@if command -v chromium >/dev/null 2>&1; then \
		echo "chromium is present"; \
	else \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; \
	fi
	@mkdir -p $(dir $(CHROMIUM)) && touch $(CHROMIUM)

$(STAMP): $(FFMPEG) $(CHROMIUM) $(VENV)/bin/python pyproject.toml setup.py $(wildcard src/childguard/*.c src/childguard/*/*.c)
	$(VENV)/bin/pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) $(OPENCVJS)

# OpenCV.js for the organisation's registration page (ORB features in the browser): pinned with
# its integrity in jsvendor/package-lock.json, fetched from the npm registry once at setup,
# copied into static/vendor/ (gitignored) and served by the service itself, never from a CDN.
JSVENDOR := src/childguard/service/web/jsvendor
OPENCVJS := src/childguard/service/web/static/vendor/opencv.js
$(OPENCVJS): $(JSVENDOR)/package.json $(JSVENDOR)/package-lock.json
	cd $(JSVENDOR) && npm ci --ignore-scripts --no-audit --no-fund
	cp $(JSVENDOR)/node_modules/@opencvjs/web/lib/opencv_js.js $(OPENCVJS)
	cp $(JSVENDOR)/node_modules/@opencvjs/web/LICENSE $(dir $(OPENCVJS))opencv.LICENSE

jsvendor: $(OPENCVJS)

# Rebuild compiled kernels in place (pip -e already builds them; this is for edits to the C code).
build: $(STAMP)
	$(PY) setup.py -q build_ext --inplace

# Real, licence-clean photos from Debian packages (fetched once from the package registry, never at run time).
$(PHOTOS): scripts/fetch_photos.py
	$(PYTHON) scripts/fetch_photos.py --dest .cache/photos

photos: $(PHOTOS)

demo: $(STAMP) $(PHOTOS) $(OPENCVJS)
	$(VENV)/bin/childguard demo

test: $(STAMP) $(PHOTOS) $(OPENCVJS)
	@# The linters and the wheel's smoke test side by side: each keeps one core busy.
	$(MAKE) --no-print-directory -j2 --output-sync=target lint wheel-smoke
	@# Two workers, a test file to each at a time; bytecode is cached (the environment may turn it
	@# off) so the suite's many CLI and server subprocesses do not compile childguard every time.
	env -u PYTHONDONTWRITEBYTECODE $(VENV)/bin/pytest -q -p no:cacheprovider -n 2 --dist loadfile

# The wheel, built from a clean copy of the checkout (nothing downloaded), installed into a
# throwaway venv and run outside the source tree: --version, hash, bank import, match, serve.
wheel-smoke: $(STAMP) $(OPENCVJS)
	$(PY) tests/packaging/wheel_smoke.py

# The wheel in dist/ (what the Containerfile installs; docs/deployment.md).
wheel: $(STAMP) $(OPENCVJS)
	$(PY) tests/packaging/wheel_smoke.py --build-only --out dist

# The screenshots the docs show (docs/img/org-*.png), taken by the organisation pages' browser
# tests; an ordinary test run writes them to a temporary folder (tests/screenshots.py).
screenshots: $(STAMP) $(PHOTOS) $(OPENCVJS)
	CHILDGUARD_SCREENSHOTS=docs/img $(VENV)/bin/pytest -q -p no:cacheprovider \
		tests/web/test_org_pages.py tests/web/test_org_register_browser.py

# The hostile-input campaign's long tier (the quick tier runs in `make test`): docs/security.md.
test-hostile: $(STAMP)
	CHILDGUARD_HOSTILE=long $(VENV)/bin/pytest -q -p no:cacheprovider tests/hostile

# The C kernels built with AddressSanitizer and UBSan, fuzzed from seeds (FUZZ_SEEDS, FUZZ_ITERATIONS).
FUZZ_SEEDS ?= 1 2 3 4
FUZZ_ITERATIONS ?= 5000
fuzz-kernels: $(STAMP)
	$(PY) tests/hostile/fuzz_kernels.py --build .cache/fuzz-kernels
	for seed in $(FUZZ_SEEDS); do \
		LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
		ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		$(PY) tests/hostile/fuzz_kernels.py --run .cache/fuzz-kernels --seed $$seed --iterations $(FUZZ_ITERATIONS) || exit 1; \
	done

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench scripts
	$(VENV)/bin/ruff format --check src tests bench scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench-hash: $(STAMP) $(PHOTOS)
	$(PY) bench/bench_hash.py

bench-match: $(STAMP) $(PHOTOS)
	$(PY) bench/bench_match.py

bench-demo: $(STAMP) $(PHOTOS)
	$(PY) bench/bench_demo.py

bench-crawl: $(STAMP) $(PHOTOS)
	$(PY) bench/bench_crawl.py

bench-bank-import: $(STAMP)
	$(PY) bench/bench_bank_import.py

bench-api: $(STAMP)
	$(PY) bench/bench_api.py

bench-robustness: $(STAMP)
	$(PY) -m bench.robustness.run

bench-robustness-held-out: $(STAMP)
	$(PY) -m bench.robustness.run --held-out

bench-robustness-fpr: $(STAMP)
	$(PY) -m bench.robustness.run --fpr

bench-votes: $(STAMP)
	$(PY) bench/bench_votes.py

bench-originals: $(STAMP) $(PHOTOS)
	$(PY) -m bench.robustness.originals

bench-shifted: $(STAMP)
	$(PY) -m bench.robustness.shifted

bench-picture: $(STAMP) $(PHOTOS)
	$(PY) bench/bench_picture.py

bench-startup: $(STAMP) $(PHOTOS)
	$(PY) bench/bench_startup.py --baseline 15fcbdd

bench-shards: $(STAMP)
	$(PY) bench/sim_shards.py --n 8000000

bench-video: $(STAMP) $(PHOTOS)
	$(PY) bench/bench_video.py

bench-hotline: $(STAMP) $(PHOTOS)
	$(PY) bench/bench_hotline.py

bench-scale: $(STAMP) $(PHOTOS)
	$(PY) bench/bench_scale.py

bench: bench-hash bench-match bench-crawl bench-bank-import bench-demo bench-video bench-hotline

clean:
	rm -rf $(VENV) build .cache/photos src/childguard/*.so src/childguard/*/*.so
