# The two commands of the README. Everything else is plumbing for them.
.PHONY: demo test bench build build-asan clean
JOBS ?= $(shell nproc)

demo:
	@scripts/deps.sh demo
	@echo "make demo: building keylink into build/ (a first build takes a minute or two; log in build/demo-build.log)"
	@mkdir -p build
	@{ cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build -j$(JOBS); } >build/demo-build.log 2>&1 \
	  || { tail -20 build/demo-build.log; echo "make demo: the build failed (full log: build/demo-build.log)"; exit 1; }
	@echo "make demo: build done"
	@scripts/demo.sh $(DEMO_ARGS)

test:
	@scripts/deps.sh test
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build build -j$(JOBS)
	cd build && ctest --output-on-failure -j$(JOBS) --timeout 900
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DKL_SANITIZE=ON
	cmake --build build-asan -j$(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j$(JOBS) --timeout 900 -LE no-asan

bench:
	@scripts/deps.sh bench
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j$(JOBS) >/dev/null
	@bench/run.sh

clean:
	rm -rf build build-asan
