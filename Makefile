# Weft: one non-recursive Makefile. `make` builds the library and tools, `make test` runs
# every test, `make run` sets up a fresh Debian/Ubuntu host and runs a 4-rank sweep.
# Optional parts are detected (nvcc, pkg-config) and reported in one summary line.

PREFIX    ?= /usr/local
CC        ?= gcc
comma     := ,
# Sanitizers: `make test SAN=address,undefined` or `make test SAN=thread` builds everything
# with -fsanitize=$(SAN) into its own directory (build-san-address-undefined, build-san-thread)
# and runs the whole suite there. UBSan stops at its first finding, so that findings fail.
SAN       ?=
BUILD     ?= $(if $(SAN),build-san-$(subst $(comma),-,$(SAN)),build)
PKG_CONFIG ?= pkg-config

WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS    ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden -pthread $(WARN) \
              -Iinclude -I. $(CFLAGS)
LDLIBS    := -lsodium -lpthread -lm
ifneq ($(SAN),)
SAN_FLAGS := -fsanitize=$(SAN) -fno-sanitize-recover=all -fno-omit-frame-pointer
ALL_CFLAGS += $(SAN_FLAGS)
LDLIBS    += $(SAN_FLAGS)
# clang links no sanitizer runtime into a shared object: the executables bring it.
SO_UNDEF  := $(if $(findstring clang,$(CC)),,-Wl,--no-undefined)
else
SO_UNDEF  := -Wl,--no-undefined
endif

# ---- optional parts -------------------------------------------------------------------
have = $(shell $(PKG_CONFIG) --exists $(1) 2>/dev/null && echo yes || echo no)
NVCC         ?= nvcc
HAVE_CUDA    := $(if $(shell command -v $(NVCC) 2>/dev/null),yes,no)
HAVE_VERBS   := $(call have,libibverbs)
HAVE_UCX     := $(call have,ucx)
HAVE_HWLOC   := $(call have,hwloc)
HAVE_PMIX    := $(call have,pmix)
# libpmix (PMIx key-value exchange, launcher/kvs_pmix.c): Debian's libpmix-dev ships pmix.pc;
# without it, look for the header and library where Debian puts them (pmix2/ under the
# multiarch directory). The library is outside the default search path, hence the rpath.
PMIX_DIR     ?= $(firstword $(wildcard /usr/lib/*/pmix2 /usr/lib64/pmix /usr/lib/pmix))
ifeq ($(HAVE_PMIX),yes)
PMIX_CFLAGS  := $(shell $(PKG_CONFIG) --cflags pmix)
PMIX_LIBS    := $(shell $(PKG_CONFIG) --libs pmix)
else ifneq ($(and $(wildcard $(PMIX_DIR)/include/pmix.h),$(wildcard $(PMIX_DIR)/lib/libpmix.so)),)
HAVE_PMIX    := yes
PMIX_CFLAGS  := -I$(PMIX_DIR)/include
PMIX_LIBS    := -L$(PMIX_DIR)/lib -Wl,-rpath,$(PMIX_DIR)/lib -lpmix
endif
ifeq ($(HAVE_PMIX),yes)
ALL_CFLAGS   += -DWEFT_HAVE_PMIX $(PMIX_CFLAGS)
LDLIBS       += $(PMIX_LIBS)
endif
# libibverbs (rdma-core; Debian's libibverbs-dev ships libibverbs.pc): RDMA device discovery
# (transport/verbs_dev.c). Without it that file builds a stub that says "not built".
ifeq ($(HAVE_VERBS),yes)
ALL_CFLAGS   += -DWEFT_HAVE_VERBS $(shell $(PKG_CONFIG) --cflags libibverbs)
LDLIBS       += $(shell $(PKG_CONFIG) --libs libibverbs)
endif
# UCX (Debian's libucx-dev ships ucx.pc): the ucx transport (transport/ucx*.c), chosen only
# with WEFT_TRANSPORT=ucx. Without it those files build to nothing and net.c lists no ucx.
ifeq ($(HAVE_UCX),yes)
ALL_CFLAGS   += -DWEFT_HAVE_UCX $(shell $(PKG_CONFIG) --cflags ucx)
LDLIBS       += $(shell $(PKG_CONFIG) --libs ucx)
endif
# hwloc (Debian's libhwloc-dev ships hwloc.pc): topology (core/topo.c: NUMA nodes, cores, PCI
# locality of NICs and GPUs) for WEFT_BIND=auto and weft-info --topo. HAVE_HWLOC=no builds
# without: WEFT_BIND=auto then binds nothing and says so.
ifeq ($(HAVE_HWLOC),yes)
ALL_CFLAGS   += -DWEFT_HAVE_HWLOC $(shell $(PKG_CONFIG) --cflags hwloc)
LDLIBS       += $(shell $(PKG_CONFIG) --libs hwloc)
endif
# Fake CUDA (FAKE_CUDA=yes, e.g. `make FAKE_CUDA=yes BUILD=build-fk all tests`): compiled as
# with CUDA, against the real CUDA headers, but linked with tests/fakecuda (a CUDA runtime
# double: streams run by threads, device memory the CPU cannot touch, IPC through memfds, the
# kernels as host code) instead of libcudart_static and the gpu/*.cu kernels, so that the GPU
# orchestration runs on hosts without a GPU. Needs the headers only, not nvcc or a driver.
# The real kernels are covered only on a real GPU. weft-info says cuda=fake.
FAKE_CUDA    ?= no
FAKE_CUDA_HOME := $(patsubst %/include/cuda_runtime_api.h,%,$(firstword $(wildcard \
                    $(if $(CUDA_HOME),$(CUDA_HOME)/include/cuda_runtime_api.h) \
                    $(if $(shell command -v $(NVCC) 2>/dev/null),$(patsubst %/bin/nvcc,%, \
                        $(realpath $(shell command -v $(NVCC))))/include/cuda_runtime_api.h) \
                    /usr/local/cuda/include/cuda_runtime_api.h /usr/include/cuda_runtime_api.h)))
ifeq ($(FAKE_CUDA),yes)
ifeq ($(FAKE_CUDA_HOME),)
$(error FAKE_CUDA=yes needs the CUDA headers (cuda_runtime_api.h and cuda.h) and found none \
    (looked in CUDA_HOME, next to nvcc, /usr/local/cuda/include, /usr/include): install the \
    CUDA toolkit, or set CUDA_HOME)
endif
override HAVE_CUDA := fake
ALL_CFLAGS   += -DWEFT_HAVE_CUDA -isystem $(FAKE_CUDA_HOME)/include
LDLIBS       += -ldl
FAKE_SRCS    := $(filter-out tests/fakecuda/test_%.c,$(wildcard tests/fakecuda/*.c))
FAKE_TEST    := $(BUILD)/tests/test_fakecuda
endif
# CUDA (nvcc on PATH, or NVCC=...; HAVE_CUDA=no builds without): gpu/ kernels for sm_80 and
# sm_90 plus compute_90 PTX. libcudart is linked statically and its symbols hidden, so
# libweft.so does not need libcuda.so.1 to load: without a driver gpu/gpu.c reports no GPU.
# libstdc++: the host stubs nvcc generates use C++ static-initialisation guards.
ifeq ($(HAVE_CUDA),yes)
CUDA_HOME    ?= $(patsubst %/bin/nvcc,%,$(realpath $(shell command -v $(NVCC))))
CUDA_LIBDIR  ?= $(patsubst %/,%,$(dir $(firstword $(wildcard $(CUDA_HOME)/lib64/libcudart_static.a \
                    $(CUDA_HOME)/targets/*/lib/libcudart_static.a /usr/lib/*/libcudart_static.a))))
CUDA_ARCHS   ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
                -gencode arch=compute_90,code=compute_90
NVCCFLAGS    ?= -O3
ALL_NVCCFLAGS := -std=c++17 $(CUDA_ARCHS) -Werror all-warnings -Xcompiler \
                 -fPIC,-fvisibility=hidden,-Wall,-Wextra,-Werror -Iinclude -I. $(NVCCFLAGS)
ALL_CFLAGS   += -DWEFT_HAVE_CUDA -isystem $(CUDA_HOME)/include
LDLIBS       += $(if $(CUDA_LIBDIR),-L$(CUDA_LIBDIR)) -lcudart_static -ldl -lrt -lstdc++
CU_SRCS      := $(wildcard gpu/*.cu)
CUDA_SO_LDFLAGS := -Wl,--exclude-libs,libcudart_static.a
endif
HAVE_CMOCKA  := $(call have,cmocka)
FEATURES := cuda=$(HAVE_CUDA) verbs=$(HAVE_VERBS) ucx=$(HAVE_UCX) hwloc=$(HAVE_HWLOC) \
            pmix=$(HAVE_PMIX)
ALL_CFLAGS += -DWEFT_FEATURES='"$(FEATURES)"'

# ---- sources --------------------------------------------------------------------------
LIB_SRCS := $(wildcard core/*.c transport/*.c collectives/*.c gpu/*.c) \
            $(filter-out launcher/weft_run.c,$(wildcard launcher/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o) $(CU_SRCS:%.cu=$(BUILD)/obj/%.o) \
            $(FAKE_SRCS:%.c=$(BUILD)/obj/%.o)
PERF_SRCS := $(wildcard perftest/*.c)
TOOLS    := $(BUILD)/bin/weft-run $(BUILD)/bin/weft-perf $(BUILD)/bin/weft-info
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
ITEST_SRCS := $(wildcard tests/integration/*.c)
ITEST_BINS := $(ITEST_SRCS:tests/integration/%.c=$(BUILD)/tests/%)
FUZZ_TARGETS := $(filter-out replay,$(basename $(notdir $(wildcard tests/fuzz/*.c))))
FUZZ_REPLAY := $(FUZZ_TARGETS:%=$(BUILD)/tests/fuzz_%)
GPU_TEST  := $(BUILD)/tests/gpu_check
GPU_COLL_TEST := $(BUILD)/tests/coll_gpu_check
FAKESHARP := $(BUILD)/fakesharp/libsharp_coll.so

.SECONDARY:
.PHONY: all lib tools tests test unit-test integration-test run install clean format features \
        gpu-bench fakecuda fakesharp fuzz fuzz-bins nccl install-nccl
all: features lib tools nccl

features:
	@echo "weft: $(CC), features: $(FEATURES)"

lib: $(BUILD)/lib/libweft.so $(BUILD)/lib/libweft.a
tools: $(TOOLS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(ALL_NVCCFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/lib/libweft.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/lib/libweft.so: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared -pthread -Wl,-soname,libweft.so.0 $(SO_UNDEF) \
	    $(CUDA_SO_LDFLAGS) -o $@ $^ $(LDLIBS)

# Tools link the static library: they use internals (bootstrap root, config table).
$(BUILD)/bin/weft-run: $(BUILD)/obj/launcher/weft_run.o $(BUILD)/lib/libweft.a
	@mkdir -p $(dir $@)
	$(CC) -pthread -o $@ $^ $(LDLIBS)
$(BUILD)/bin/weft-perf: $(PERF_SRCS:%.c=$(BUILD)/obj/%.o) $(BUILD)/lib/libweft.a
	@mkdir -p $(dir $@)
	$(CC) -pthread -o $@ $^ $(LDLIBS) $(PERF_LIBS)

# weft-perf links/fabric (docs/perftest.md): ibv_port_attr.active_speed_ex (rdma-core 47+,
# XDR's speed code) when the installed headers have it; libjansson for --compare.
PERF_SPEED_EX := $(shell printf '\043include <infiniband/verbs.h>\nunsigned f(struct ibv_port_attr *a) { return a->active_speed_ex; }\n' | $(CC) -x c -c -o /dev/null - 2>/dev/null && echo yes)
PERF_JANSSON  := $(shell $(PKG_CONFIG) --exists jansson 2>/dev/null && echo yes)
PERF_CFLAGS   := $(if $(PERF_SPEED_EX),-DWEFT_HAVE_IBV_SPEED_EX) \
                 $(if $(PERF_JANSSON),-DWEFT_HAVE_JANSSON $(shell $(PKG_CONFIG) --cflags jansson))
PERF_LIBS     := $(if $(PERF_JANSSON),$(shell $(PKG_CONFIG) --libs jansson))
$(BUILD)/obj/perftest/%.o: ALL_CFLAGS += $(PERF_CFLAGS)
$(BUILD)/tests/test_links: $(BUILD)/obj/tests/unit/test_links.o $(BUILD)/obj/perftest/links.o \
        $(BUILD)/lib/libweft.a
	@mkdir -p $(dir $@)
	$(CC) -pthread -o $@ $^ -lcmocka $(LDLIBS)
$(BUILD)/tests/test_fabric_judge: $(BUILD)/obj/tests/unit/test_fabric_judge.o \
        $(BUILD)/obj/perftest/fabric_report.o $(BUILD)/obj/perftest/fabric_sched.o \
        $(BUILD)/obj/perftest/plot.o $(BUILD)/lib/libweft.a
	@mkdir -p $(dir $@)
	$(CC) -pthread -o $@ $^ -lcmocka $(LDLIBS)
$(BUILD)/tests/test_fabric_sched: $(BUILD)/obj/tests/unit/test_fabric_sched.o \
        $(BUILD)/obj/perftest/fabric_sched.o
	@mkdir -p $(dir $@)
	$(CC) -pthread -o $@ $^ -lcmocka $(LDLIBS)
$(BUILD)/bin/weft-info: $(BUILD)/obj/tools/weft_info.o $(BUILD)/lib/libweft.a
	@mkdir -p $(dir $@)
	$(CC) -pthread -o $@ $^ $(LDLIBS)

# ---- tests ----------------------------------------------------------------------------
tests: $(UNIT_BINS) $(ITEST_BINS) $(GPU_TEST) $(GPU_COLL_TEST) $(FAKE_TEST) $(FUZZ_REPLAY) \
       $(FAKESHARP)

# tests/fuzz: each fuzz target with a main that replays files instead of libFuzzer, so that
# `make test` runs the seed corpus and every kept crash input with any compiler.
$(BUILD)/tests/fuzz_%: $(BUILD)/obj/tests/fuzz/%.o $(BUILD)/obj/tests/fuzz/replay.o \
        $(BUILD)/lib/libweft.a
	@mkdir -p $(dir $@)
	$(CC) -pthread -o $@ $^ $(LDLIBS)

# `make fuzz`: every target under libFuzzer with ASan and UBSan (clang; FUZZ_CC=...), for
# FUZZ_TIME seconds each, from its seed corpus (tests/fuzz/corpus/<target>) and kept crash
# inputs (tests/fuzz/regress/<target>); the corpus grows in $(BUILD)/fuzz/corpus, crashes land
# in $(BUILD)/fuzz/crashes. FUZZ_TARGETS=... picks some. Fails if any target crashed.
FUZZ_CC   ?= clang
FUZZ_TIME ?= 60
fuzz:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/fuzz CC=$(FUZZ_CC) HAVE_CUDA=no \
	    SAN=fuzzer-no-link,address,undefined fuzz-bins
	@tests/fuzz/run.sh $(BUILD)/fuzz $(FUZZ_TIME) $(FUZZ_TARGETS)
fuzz-bins: $(FUZZ_TARGETS:%=$(BUILD)/fuzz-%)
$(BUILD)/fuzz-%: $(BUILD)/obj/tests/fuzz/%.o $(BUILD)/lib/libweft.a
	$(CC) -fsanitize=fuzzer -pthread -o $@ $^ $(LDLIBS)

# tests/gpu: device reductions against the host kernels; prints "skip" without a GPU.
$(BUILD)/tests/gpu_check: $(BUILD)/obj/tests/gpu/gpu_check.o $(BUILD)/lib/libweft.a
	@mkdir -p $(dir $@)
	$(CC) -pthread -o $@ $^ $(LDLIBS)

# tests/gpu, under weft-run: every collective on device buffers on a stream; skips without a GPU.
$(BUILD)/tests/coll_gpu_check: $(BUILD)/obj/tests/gpu/coll_gpu_check.o $(BUILD)/lib/libweft.a
	@mkdir -p $(dir $@)
	$(CC) -pthread -o $@ $^ $(LDLIBS)

# tests/fakecuda: the fake CUDA runtime's own test (FAKE_CUDA=yes builds only).
$(BUILD)/tests/test_fakecuda: $(BUILD)/obj/tests/fakecuda/test_fakecuda.o $(BUILD)/lib/libweft.a
	@mkdir -p $(dir $@)
	$(CC) -pthread -o $@ $^ $(LDLIBS)

# The fake-CUDA build beside this one, $(BUILD)/fakecuda, where run-all.sh finds it: without a
# GPU, it runs the GPU cases there. Without the CUDA headers there is none (run-all.sh says so).
# FAKE_SANITIZE=address,undefined (what `make test` asks for; `make test SAN=...` asks for
# $(SAN)) builds it with that SAN=, so that those cases also check the memory use (or, under
# SAN=thread, the threads) of the GPU orchestration; a change of compiler line rebuilds it.
FAKE_SANITIZE ?= $(SAN)
FAKE_STAMP = $(CC) $(FAKE_SANITIZE)
fakecuda:
ifeq ($(FAKE_CUDA),yes)
	@true
else ifeq ($(FAKE_CUDA_HOME),)
	@echo "weft: no CUDA headers, so no fake-CUDA build: the GPU cases are skipped without a GPU"
else
	@stamp=$(BUILD)/fakecuda/.cc; if [ "$$(cat $$stamp 2>/dev/null)" != "$(FAKE_STAMP)" ]; then \
	    rm -rf $(BUILD)/fakecuda && mkdir -p $(BUILD)/fakecuda && echo "$(FAKE_STAMP)" >$$stamp; fi
	@$(MAKE) --no-print-directory FAKE_CUDA=yes BUILD=$(BUILD)/fakecuda SAN=$(FAKE_SANITIZE) \
	    all tests
endif

# tests/fakesharp: a libsharp_coll double (a shared-memory segment plays the switch) that the
# SHARP cases load through WEFT_SHARP_LIB; `make fakesharp` builds it alone. Its entry points
# are declared by collectives/sharp_api.h only through function-pointer types, hence
# -Wno-missing-prototypes.
fakesharp: $(FAKESHARP)
$(FAKESHARP): tests/fakesharp/fakesharp.c collectives/sharp_api.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes -shared -o $@ $< $(if $(SAN),$(SAN_FLAGS))

# bench/gpu.sh builds this: reduction kernels against cudaMemcpy device-to-device.
gpu-bench: $(BUILD)/bench/gpu_reduce_bench
$(BUILD)/bench/gpu_reduce_bench: $(BUILD)/obj/bench/gpu_reduce_bench.o $(BUILD)/lib/libweft.a
	@mkdir -p $(dir $@)
	$(CC) -pthread -o $@ $^ $(LDLIBS)

# The collectives unit test runs the algorithms over an in-process net (threads as ranks).
$(BUILD)/tests/test_collectives: $(BUILD)/obj/tests/unit/test_collectives.o \
        $(BUILD)/obj/tests/unit/fake_net.o $(filter-out $(BUILD)/obj/transport/%,$(LIB_OBJS))
	@mkdir -p $(dir $@)
	$(CC) -pthread -o $@ $^ -lcmocka $(LDLIBS)
# The registration cache's test registers through a fake ibv_reg_mr/ibv_dereg_mr (--wrap).
$(BUILD)/tests/test_verbs_regcache: $(BUILD)/obj/tests/unit/test_verbs_regcache.o \
        $(BUILD)/lib/libweft.a
	@mkdir -p $(dir $@)
	$(CC) -pthread -Wl,--wrap=ibv_reg_mr -Wl,--wrap=ibv_dereg_mr -o $@ $^ -lcmocka $(LDLIBS)
$(BUILD)/tests/test_%: $(BUILD)/obj/tests/unit/test_%.o $(BUILD)/lib/libweft.a
	@mkdir -p $(dir $@)
	$(CC) -pthread -o $@ $^ -lcmocka $(LDLIBS)
$(BUILD)/tests/%: $(BUILD)/obj/tests/integration/%.o $(BUILD)/lib/libweft.a
	@mkdir -p $(dir $@)
	$(CC) -pthread -o $@ $^ $(LDLIBS)

unit-test: $(UNIT_BINS) $(GPU_TEST)
	@tests/run-all.sh $(BUILD) --unit

integration-test: all $(ITEST_BINS) $(GPU_TEST) $(GPU_COLL_TEST)
	@tests/run-all.sh $(BUILD) --integration

# Like `make run`, `make test` sets up a fresh host first (packages, as root). The suite must
# register at least TEST_MIN_CASES cases (run or skipped; `WEFT_TEST_LIST=1 tests/run-all.sh`
# lists them): 145 everywhere, 22 more with UCX, 22 more with CUDA headers (GPU or fake CUDA).
# Raise it when adding cases; a run below it fails (a block of run-all.sh lost or skipped).
TEST_MIN_CASES ?= $(shell echo $$((145 + $(if $(filter yes,$(HAVE_UCX)),22,0) + \
                      $(if $(FAKE_CUDA_HOME),22,0))))
test:
	@tools/install-deps.sh
	@tools/install-deps.sh --slurm --rxe || \
	    echo "weft: the Slurm and soft-RoCE cases need root and these packages (skipped without root)"
	@$(MAKE) --no-print-directory all tests
	@$(MAKE) --no-print-directory fakecuda FAKE_SANITIZE=$(or $(SAN),address$(comma)undefined)
	@$(SAN_TEST_ENV) WEFT_TEST_MIN_CASES=$(TEST_MIN_CASES) tests/run-all.sh $(BUILD)

# Sanitized runs are slower: every case's time limit is scaled. UCX's memory hooks (libucm
# patches mmap and madvise) crash ThreadSanitizer's threads at exit: off under SAN=thread.
# libpmix's own leaks (at init, in its data store) are not Weft's: tests/lsan.supp. Programs
# the tests compile against the library get the sanitizer too (WEFT_TEST_CFLAGS).
SAN_TEST_ENV = $(if $(SAN),WEFT_TEST_TIME_SCALE=$(if $(findstring thread,$(SAN)),4,2) \
                   WEFT_TEST_CFLAGS="$(SAN_FLAGS)" \
                   LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp) \
               $(if $(findstring thread,$(SAN)),UCX_MEM_MMAP_HOOK_MODE=none)

# ---- nccl/: libnccl.so.2, the NCCL API on Weft (docs/nccl.md) ----------------------------
# One self-contained library: the nccl/ layer over include/weft.h with libweft.a linked in
# (libweft's symbols and the CUDA runtime stay hidden; nccl/libnccl.map exports nccl* only),
# so that LD_PRELOAD or LD_LIBRARY_PATH of this one file is all a user needs. Installed
# apart, in NCCL_PREFIX, so that nothing picks it up unless asked (an NCCL_HOME layout).
NCCL_SRCS   := $(wildcard nccl/*.c)
NCCL_OBJS   := $(NCCL_SRCS:%.c=$(BUILD)/obj/%.o)
NCCL_DIR    := $(BUILD)/lib/nccl
NCCL_LIB    := $(NCCL_DIR)/libnccl.so.2
NCCL_VERSION := $(shell sed -n 's/^\#define NCCL_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$$/\2/p' \
                  nccl/nccl.h | paste -sd.)
NCCL_PREFIX ?= $(PREFIX)/lib/nccl-weft
NCCL_TESTS  := $(BUILD)/tests/nccl_check
$(NCCL_OBJS) $(BUILD)/obj/tests/nccl/nccl_check.o: ALL_CFLAGS += -Inccl
# The API itself must be visible (the version script then keeps it to nccl*).
$(NCCL_OBJS): ALL_CFLAGS += -fvisibility=default
nccl: $(NCCL_LIB) $(NCCL_DIR)/libnccl.so $(NCCL_DIR)/nccl.h $(NCCL_DIR)/nccl.pc
$(NCCL_LIB): $(NCCL_OBJS) $(BUILD)/lib/libweft.a nccl/libnccl.map
	@mkdir -p $(dir $@)
	$(CC) -shared -pthread -Wl,-soname,libnccl.so.2 -Wl,--version-script=nccl/libnccl.map \
	    $(SO_UNDEF) $(CUDA_SO_LDFLAGS) -o $@ $(NCCL_OBJS) $(BUILD)/lib/libweft.a $(LDLIBS)
$(NCCL_DIR)/libnccl.so: $(NCCL_LIB)
	ln -sf libnccl.so.2 $@
$(NCCL_DIR)/nccl.h: nccl/nccl.h
	@mkdir -p $(dir $@)
	cp $< $@
$(NCCL_DIR)/nccl.pc: nccl/nccl.pc.in nccl/nccl.h
	@mkdir -p $(dir $@)
	d=$$(cd $(NCCL_DIR) && pwd); sed -e "s|@PREFIX@|$$d|" -e "s|@LIBDIR@|$$d|" \
	    -e "s|@INCLUDEDIR@|$$d|" -e 's|@NCCL_VERSION@|$(NCCL_VERSION)|' $< >$@
install-nccl: nccl
	install -d $(DESTDIR)$(NCCL_PREFIX)/lib/pkgconfig $(DESTDIR)$(NCCL_PREFIX)/include
	install -m 755 $(NCCL_LIB) $(DESTDIR)$(NCCL_PREFIX)/lib/libnccl.so.2
	ln -sf libnccl.so.2 $(DESTDIR)$(NCCL_PREFIX)/lib/libnccl.so
	install -m 644 nccl/nccl.h $(DESTDIR)$(NCCL_PREFIX)/include/
	sed -e 's|@PREFIX@|$(NCCL_PREFIX)|' -e 's|@LIBDIR@|$(NCCL_PREFIX)/lib|' \
	    -e 's|@INCLUDEDIR@|$(NCCL_PREFIX)/include|' -e 's|@NCCL_VERSION@|$(NCCL_VERSION)|' \
	    nccl/nccl.pc.in >$(DESTDIR)$(NCCL_PREFIX)/lib/pkgconfig/nccl.pc
install: install-nccl
# tests/nccl: every call of nccl.h at 2 to 4 ranks; linked statically here, so that under
# the fake CUDA it shares the fake runtime with the library (tests/nccl/lib_check.sh links
# libnccl.so.2 itself).
tests: $(NCCL_TESTS)
$(BUILD)/tests/nccl_check: $(BUILD)/obj/tests/nccl/nccl_check.o $(NCCL_OBJS) $(BUILD)/lib/libweft.a
	@mkdir -p $(dir $@)
	$(CC) -pthread -o $@ $^ $(LDLIBS)

# ---- the main job ---------------------------------------------------------------------
run:
	@tools/install-deps.sh
	@$(MAKE) --no-print-directory all
	$(BUILD)/bin/weft-run -n 4 $(BUILD)/bin/weft-perf allreduce -b 8 -e 64M -f 4 -c 1

# ---- Python package (python/, docs/python.md) ---------------------------------------
# `make python` builds the library and a wheel of the weft package into $(BUILD)/python (it
# remembers $(BUILD)/lib, so it finds libweft there when installed on this host);
# `make python-install PYTHON=/path/to/venv/bin/python` pip-installs that wheel for PYTHON.
# Offline: setuptools and wheel must be installed for PYTHON (Debian: python3-wheel).
PYTHON    ?= python3
.PHONY: python python-install
python: lib
	rm -rf $(BUILD)/python && mkdir -p $(BUILD)/python && cp -r python $(BUILD)/python/src
	cd $(BUILD)/python/src && BUILD=$(abspath $(BUILD)) $(PYTHON) -m pip wheel -q --no-deps \
	    --no-index --no-build-isolation -w .. .
	@echo "weft: $$(ls $(BUILD)/python/*.whl); install it with make python-install PYTHON=..."
python-install: python
	$(PYTHON) -m pip install --force-reinstall --no-deps --no-index $(BUILD)/python/weft-*.whl

# ---- install --------------------------------------------------------------------------
install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/weft.h include/weft_tools.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(BUILD)/lib/libweft.so $(DESTDIR)$(PREFIX)/lib/libweft.so.0
	ln -sf libweft.so.0 $(DESTDIR)$(PREFIX)/lib/libweft.so
	install -m 644 $(BUILD)/lib/libweft.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|0.1.0|' -e 's|@LIBS_PRIVATE@|$(LDLIBS)|' weft.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/weft.pc

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
