# picolog / pinnacle_persist / vault -- build, test, bench.
#   make            examples and tools
#   make test       the whole suite: plain, ASan+UBSan, TSan (what CI runs)
#   make demo       the examples, end to end
#   make bench      benchmarks (see bench/README and docs/performance.md)
#   make deps       install missing Debian packages for the tests (tools/deps.sh; demo: only liburing)
#   make install    PREFIX=/usr/local DESTDIR=: headers, tools, man pages, picolog.pc, CMake package

CC      ?= cc
CXX     ?= c++
OPT     ?= -O2 -g
WARN    := -Wall -Wextra -Werror
CSTD    := -std=c11
URING_CFLAGS := $(shell pkg-config --cflags liburing 2>/dev/null)
URING_LIBS   := $(shell pkg-config --libs liburing 2>/dev/null || echo -luring)
LIBS    := $(URING_LIBS) -lpthread
HEADERS := $(wildcard *.h)
B       := build

EXAMPLES := $(patsubst examples/%.c,$(B)/%,$(wildcard examples/*.c))
TOOLS    := $(patsubst tools/%.c,$(B)/%,$(wildcard tools/*.c))
TESTS    := $(patsubst tests/%.c,%,$(wildcard tests/test_*.c))
BENCHES  := $(patsubst bench/%.c,$(B)/bench/%,$(wildcard bench/*.c))
# picolog_raft.h's example, tests and bench need libraft-dev and libuv1-dev
# (tools/deps.sh test installs them); without them they are left out.
HAVE_RAFT := $(shell printf '#include <raft.h>\n#include <raft/uv.h>\n' | $(CC) -E -x c - >/dev/null 2>&1 && echo 1)
ifneq ($(HAVE_RAFT),1)
EXAMPLES := $(filter-out $(B)/replicated_log,$(EXAMPLES))
TESTS    := $(filter-out test_raft_%,$(TESTS))
BENCHES  := $(filter-out $(B)/bench/raft_bench,$(BENCHES))
endif

# The longest tests first: tests/run.sh runs two binaries at a time, and a
# long one started last would run alone at the end.
HEAVY_TESTS := test_sim_picolog_api test_sim_picolog test_sim_pinnacle test_crash_vault test_picolog test_picolog_nouring test_crash_pinnacle
TESTS    := $(filter $(HEAVY_TESTS),$(TESTS)) $(filter-out $(HEAVY_TESTS),$(TESTS))

# A source file may ask for extra link flags with a line "// LIBS: -lfoo",
# and a test may leave out a sanitizer run with "// NO_TSAN" or "// NO_ASAN".
libs_of  = $(shell sed -n 's|^// LIBS: *||p' $(1))
TSAN_TESTS := $(foreach t,$(TESTS),$(if $(shell grep -l '^// NO_TSAN' tests/$(t).c),,$(t)))
ASAN_TESTS := $(foreach t,$(TESTS),$(if $(shell grep -l '^// NO_ASAN' tests/$(t).c),,$(t)))

# -g1: line tables only. The sanitizers' reports need file and line, not
# variables; full -g made these two builds half again as long to compile.
SAN_ASAN := -O1 -g1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
SAN_TSAN := -O1 -g1 -fsanitize=thread

.PHONY: all test test-plain test-asan test-tsan demo bench deps clean check-headers plot soak fuzz test-fuzz test-valgrind
all: $(EXAMPLES) $(TOOLS)

deps:
	bash tools/deps.sh test

$(B)/%: examples/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(OPT) $(WARN) $(URING_CFLAGS) -I. $< -o $@ $(call libs_of,$<) $(LIBS)

# vaultctl shares tools/password.h (the password sources) with the tools
$(B)/vaultctl: tools/password.h

$(B)/%: tools/%.c $(HEADERS) $(wildcard tools/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(OPT) $(WARN) $(URING_CFLAGS) -I. $< -o $@ $(call libs_of,$<) $(LIBS)

$(B)/bench/%: bench/%.c $(HEADERS) $(wildcard bench/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -O2 -g $(WARN) $(URING_CFLAGS) -I. -Ibench $< -o $@ $(call libs_of,$<) $(LIBS) -lm

$(B)/test/%: tests/%.c $(HEADERS) tests/t.h
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(OPT) $(WARN) $(URING_CFLAGS) -I. $< -o $@ $(call libs_of,$<) $(LIBS)

$(B)/asan/%: tests/%.c $(HEADERS) tests/t.h
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(SAN_ASAN) $(WARN) $(URING_CFLAGS) -I. $< -o $@ $(call libs_of,$<) $(LIBS)

$(B)/tsan/%: tests/%.c $(HEADERS) tests/t.h
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(SAN_TSAN) $(WARN) $(URING_CFLAGS) -I. $< -o $@ $(call libs_of,$<) $(LIBS)

# Every header as C11 and C++17, with gcc and (when present) clang.
check-headers:
	@bash tests/compile_check.sh

test-plain: $(addprefix $(B)/test/,$(TESTS)) $(EXAMPLES) $(TOOLS)
	@bash tests/run.sh plain tests/compile_check.sh $(wildcard tests/test_*.sh) $(addprefix $(B)/test/,$(TESTS))
test-asan: $(addprefix $(B)/asan/,$(ASAN_TESTS))
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  bash tests/run.sh asan+ubsan $(addprefix $(B)/asan/,$(ASAN_TESTS))
test-tsan: $(addprefix $(B)/tsan/,$(TSAN_TESTS))
	@TSAN_OPTIONS=halt_on_error=1:suppressions=$(CURDIR)/tests/tsan.supp PLG_TEST_QUICK=1 bash tests/run.sh tsan $(addprefix $(B)/tsan/,$(TSAN_TESTS))

# One summary line for the whole suite: "N passed, N failed, N skipped". Every
# configuration (plain, asan+ubsan, tsan, fuzz, valgrind) must report, or the
# suite fails naming it (tests/suite.sh).
test:
	@bash tools/deps.sh test
	@MAKE="$(MAKE)" B="$(B)" bash tests/suite.sh

demo:
	@bash tools/deps.sh demo
	@$(MAKE) --no-print-directory $(EXAMPLES)
	@bash examples/demo.sh

bench: $(BENCHES)
	@bash bench/run.sh

# Benchmark extras (docs/performance.md): the optional peer libraries, the
# 10 GiB seek benchmark (slow, needs 25 GiB free), and the plots.
.PHONY: bench-deps bench-seek
bench-deps:
	bash bench/deps.sh
bench-seek: $(BENCHES)
	@bash bench/run.sh --seek-only
plot:
	@bash bench/plot.sh

clean:
	rm -rf $(B)

# ---- install ------------------------------------------------------------------
#   make install [PREFIX=/usr/local] [DESTDIR=]   headers, tools, man pages,
#   picolog.pc (pkg-config) and the CMake package (find_package(picolog); needs cmake)
PREFIX  ?= /usr/local
DESTDIR ?=
VERSION := $(shell sed -n 's/^\#define PICOLOG_VERSION_STRING "\(.*\)"/\1/p' picolog.h)
INSTALL_HEADERS := picolog.h pinnacle_persist.h vault.h picolog_raft.h
MANPAGES := $(wildcard docs/man/*.1)
.PHONY: install
install: $(TOOLS)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' picolog.pc.in > $(B)/picolog.pc
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 $(INSTALL_HEADERS) $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	$(if $(MANPAGES),install -m 644 $(MANPAGES) $(DESTDIR)$(PREFIX)/share/man/man1/)
	install -m 644 $(B)/picolog.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' picolog-raft.pc.in > $(B)/picolog-raft.pc
	install -m 644 $(B)/picolog-raft.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	@if command -v cmake >/dev/null; then \
	  cmake -S . -B $(B)/cmake-install -DCMAKE_INSTALL_PREFIX=$(PREFIX) -DCMAKE_INSTALL_LIBDIR=lib >/dev/null && \
	  DESTDIR=$(DESTDIR) cmake --install $(B)/cmake-install --component cmake; \
	else echo "install: cmake not found: the CMake package (find_package(picolog)) is not installed"; fi

# ---- fault injection, crash torture, fuzzing, valgrind (issue 6) -------------
#   make soak [SEEDS=N] [ROUNDS=N]   the simulated disk and the SIGKILL torture (picolog, vault), longer
#   make fuzz [FUZZ_SECONDS=N]       every libFuzzer target in fuzz/ (clang), longer
#     [FUZZ_RUNS=N] [FUZZ_TARGETS="fuzz_picolog_reader ..."]   N executions each, only these targets
#   make test-fuzz / test-valgrind   the short CI runs (part of `make test`)
#   make fuzz-seeds                  refresh the kept seed corpus fuzz/seeds from fresh seeds
# Test helpers in tests/*.h are prerequisites of every test binary.
TEST_HELPERS := $(filter-out tests/t.h,$(wildcard tests/*.h))
$(addprefix $(B)/test/,$(TESTS)) $(addprefix $(B)/asan/,$(TESTS)) $(addprefix $(B)/tsan/,$(TESTS)): $(TEST_HELPERS)
FUZZ_TESTS := $(filter test_fuzz_%,$(TESTS))
$(foreach t,$(FUZZ_TESTS),$(B)/test/$(t) $(B)/asan/$(t) $(B)/tsan/$(t)): $(wildcard fuzz/*.c fuzz/*.h)

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 600
# per target, in `make test`: 7 targets, two at a time (tests/fuzz.sh), x 12 s
# = about 45 s of fuzzing; `make fuzz` is the long run (FUZZ_SECONDS)
FUZZ_CI_SECONDS ?= 12
$(B)/fuzz/%: fuzz/%.c $(HEADERS) $(wildcard fuzz/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c11 -g1 -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined $(URING_CFLAGS) -I. $< -o $@ $(call libs_of,$<) $(LIBS)

VALGRIND_TESTS := $(TESTS)
test-valgrind: $(addprefix $(B)/test/,$(VALGRIND_TESTS))
	@bash tests/valgrind.sh $(addprefix $(B)/test/,$(VALGRIND_TESTS))

# make soak SEEDS=N ROUNDS=N [SEED_BASE=N]: fresh seeds each time unless SEED_BASE is given
SEEDS     ?= 20000
ROUNDS    ?= 2000
ifndef SEED_BASE
SEED_BASE := $(shell date +%s)
endif
soak: $(B)/test/test_sim_picolog $(B)/test/test_sim_picolog_api $(B)/test/test_crash_picolog $(B)/test/test_sim_pinnacle $(B)/test/test_crash_pinnacle $(B)/test/test_crash_vault
	@echo "soak: $(SEEDS) simulated-disk seeds from $(SEED_BASE), $(ROUNDS) SIGKILL rounds (picolog, pinnacle, vault)"
	PLG_SIM_SEEDS=$(SEEDS) PLG_SIM_BASE=$(SEED_BASE) $(B)/test/test_sim_picolog
	PLG_SIMAPI_SEEDS=$(SEEDS) PLG_SIMAPI_BASE=$(SEED_BASE) $(B)/test/test_sim_picolog_api
	PLG_CRASH_ROUNDS=$(ROUNDS) PLG_CRASH_SEED=$(SEED_BASE) $(B)/test/test_crash_picolog
	PP_SIM_SEEDS=$(SEEDS) PP_SIM_BASE=$(SEED_BASE) $(B)/test/test_sim_pinnacle
	PP_CRASH_ROUNDS=$(ROUNDS) PP_CRASH_SEED=$(SEED_BASE) $(B)/test/test_crash_pinnacle
	VAULT_CRASH_ROUNDS=$(ROUNDS) VAULT_CRASH_SEED=$(SEED_BASE) $(B)/test/test_crash_vault

# ---- replication (picolog_raft.h, issue 14) ------------------------------------
#   make cluster-demo          3 nodes on 127.0.0.1, kill -9 the leader under load, restart, check
#   make cluster-test ROUNDS=N random kill -9 / partitions under load, tiny snapshots; one summary line
# (make test runs 2 rounds through tests/test_raft_cluster.sh; make soak runs RAFT_ROUNDS)
RAFT_ROUNDS ?= 40
.PHONY: cluster-demo cluster-test soak-raft
cluster-demo:
	@bash tools/deps.sh cluster
	@$(MAKE) --no-print-directory $(B)/replicated_log HAVE_RAFT=1
	@mkdir -p $(B)/tmp && PLR_WORK_DIR=$(B)/tmp $(B)/replicated_log demo
cluster-test:
	@bash tools/deps.sh cluster
	@$(MAKE) --no-print-directory $(B)/replicated_log HAVE_RAFT=1
	@mkdir -p $(B)/tmp && PLR_WORK_DIR=$(B)/tmp $(B)/replicated_log cluster-test $(if $(filter command line,$(origin ROUNDS)),$(ROUNDS),5)
soak-raft: $(if $(HAVE_RAFT),$(B)/replicated_log $(B)/test/test_raft_storage $(B)/test/test_raft_cluster_sim)
	@if [ "$(HAVE_RAFT)" = 1 ]; then mkdir -p $(B)/tmp && \
	  PLR_STORAGE_SEEDS=$(if $(filter 20000,$(SEEDS)),300,$(SEEDS)) $(B)/test/test_raft_storage && \
	  PLR_CLUSTER_SIM_ROUNDS=$(RAFT_ROUNDS) PLR_CLUSTER_SIM_SEED=$(SEED_BASE) $(B)/test/test_raft_cluster_sim && \
	  PLR_WORK_DIR=$(B)/tmp $(B)/replicated_log cluster-test $(RAFT_ROUNDS); \
	else echo "soak: libraft-dev/libuv1-dev missing: replication soak skipped"; fi
soak: soak-raft

# make mutants: plant each bug of the mutation audit (issue 19) in a scratch
# copy, run the tests that should catch it, print caught / NOT CAUGHT
.PHONY: mutants
mutants:
	@bash tools/mutants.sh

fuzz:
	@FUZZ_RUNS="$(FUZZ_RUNS)" FUZZ_TARGETS="$(FUZZ_TARGETS)" bash tests/fuzz.sh $(FUZZ_SECONDS)
test-fuzz:
	@FUZZ_SEED=1 bash tests/fuzz.sh $(FUZZ_CI_SECONDS)
# make fuzz-seeds: replace the kept seed corpus fuzz/seeds/<target> (what
# make test fuzzes from) by seeds the tests make afresh; commit the result
.PHONY: fuzz-seeds
fuzz-seeds: $(addprefix $(B)/test/,$(FUZZ_TESTS))
	@rm -rf $(B)/fuzz/seeds
	@for t in $(FUZZ_TESTS); do PLG_TEST_DIR=$(B)/tmp/fuzzseeds $(B)/test/$$t >/dev/null || exit 1; done
	@rm -rf fuzz/seeds && cp -r $(B)/fuzz/seeds fuzz/seeds
	@for d in fuzz/seeds/*; do echo "$$d: $$(ls $$d | wc -l) inputs"; done
# tests that #include another test's source
$(B)/test/test_picolog_nouring $(B)/asan/test_picolog_nouring $(B)/tsan/test_picolog_nouring: tests/test_picolog.c
$(B)/test/test_sim_picolog_encrypt $(B)/asan/test_sim_picolog_encrypt $(B)/tsan/test_sim_picolog_encrypt: tests/test_sim_picolog.c
