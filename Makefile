# tocsin -- one Makefile: explicit object lists, -MMD deps.
# Targets: all deps test lint demo bench asan fuzz clean. A bare `make` builds `all`.

.DEFAULT_GOAL := all

CC       ?= cc
BUILD    ?= build
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
override CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -MMD -MP -I.
LDLIBS   += -lrdkafka -lcurl -ljansson -lsqlite3 -lmicrohttpd -lcrypto -lpthread -lm

# Debian packages the build, tests and demo need; `make deps` installs the missing ones.
DEB_PKGS := gcc make pkg-config librdkafka-dev libcurl4-openssl-dev libjansson-dev \
            libsqlite3-dev libmicrohttpd-dev libcmocka-dev libssl-dev sqlite3 curl \
            procps python3 chromium prometheus tzdata clang-format
# Commands whose Debian package is installed only when the command is missing (a machine
# may already have Node.js from elsewhere, whose npm conflicts with Debian's).
DEB_CMDS := node:nodejs npm:npm

# ---- objects, one list per module (each module's owner edits only its line) ----
CORE_OBJS  := core/err.o core/log.o core/buf.o core/clock.o core/hash.o core/msg.o core/near.o \
              core/cfg.o core/kq.o core/sig.o core/runfile.o core/broker.o core/demo.o \
              core/hist.o core/sup.o core/up.o core/num.o core/pfile.o core/tz.o core/tzdb.o \
              core/capacity.o core/rl.o core/drill.o core/drill_env.o core/drill_blast.o \
              core/drill_measure.o core/drill_running.o core/drill_report.o
TMPL_OBJS  := templates/tmpl.o templates/sms.o templates/email.o
VND_OBJS   := vendors/vnd.o vendors/twilio.o vendors/vonage.o vendors/sendgrid.o vendors/mailgun.o \
              vendors/send.o vendors/vsend.o vendors/sim/sim.o vendors/sim/sim_srv.o vendors/sim/sim_ctl.o vendors/sim/sim_util.o \
              vendors/sim/sim_twilio.o vendors/sim/sim_vonage.o vendors/sim/sim_sendgrid.o vendors/sim/sim_mailgun.o \
              vendors/sim/sim_json.o vendors/sim/sim_sign.o vendors/sim/sim_form.o vendors/sim/sim_seg.o
PROD_OBJS  := producer/launch.o producer/prod.o producer/prod_read.o producer/prod_run.o producer/prod_report.o producer/aud.o producer/addr.o producer/aset.o \
              producer/camp.o producer/optc.o producer/penc.o
DSP_OBJS   := dispatcher/dsp.o dispatcher/dsp_lease.o dispatcher/dsp_send.o dispatcher/dsp_outcome.o dispatcher/dsp_group.o dispatcher/dsp_setup.o dispatcher/dsp_stats.o dispatcher/dsp_metrics.o dispatcher/dsp_queue.o dispatcher/dsp_state.o dispatcher/dsp_ledger.o dispatcher/dsp_share.o dispatcher/dead.o vendors/http.o dispatcher/sla.o dispatcher/route.o dispatcher/retry.o
TRK_OBJS   := tracker/store.o tracker/store_status.o tracker/api.o tracker/dash.o tracker/ctl.o tracker/ctlcmd.o tracker/http.o tracker/track.o tracker/status.o tracker/reply.o tracker/presence.o tracker/web.o tracker/webaud.o tracker/webcomp.o tracker/weblaunch.o tracker/webpage.o tracker/recon.o tracker/whack.o tracker/hooks.o
HOLD_OBJS  := hold/hold.o

LIB_OBJS   := $(addprefix $(BUILD)/,$(CORE_OBJS) $(TMPL_OBJS) $(VND_OBJS) $(PROD_OBJS) \
                                    $(DSP_OBJS) $(TRK_OBJS) $(HOLD_OBJS))
LIB        := $(BUILD)/libtocsin.a

# ---- unit tests: tests/unit/test_<name>.c, cmocka; one list per module ----
UT_CORE    := test_buf test_msg test_cfg test_num test_kq_read test_tz test_capacity test_rl test_drill
UT_TMPL    := test_tmpl test_tmpl_golden test_sms test_email
UT_VND     := test_vnd test_vnd_sim test_sim_json test_http test_vsend
UT_PROD    := test_prod_addr test_prod_aud test_prod_penc test_prod_kafka
UT_DSP     := test_dsp_queue test_dsp_ledger test_dsp_lease test_dsp_share test_sla test_route test_retry test_hist
UT_HOLD    := test_hold
UT_TRK     := test_trk_store test_trk_recon test_trk_whack
UNIT_TESTS := $(UT_CORE) $(UT_TMPL) $(UT_VND) $(UT_PROD) $(UT_DSP) $(UT_TRK) $(UT_HOLD)
UNIT_BINS  := $(addprefix $(BUILD)/tests/,$(UNIT_TESTS))

# ---- benchmarks: bench/<name>.c; one list per module ----
BENCH_TMPL := bench_render
BENCH_VND  := bench_sim_sg
BENCH_PROD := bench_launch
BENCH_DSP  := bench_rl bench_failover bench_curl bench_msg_scan
BENCH_TRK  := bench_track_ingest bench_track_http
BENCHES    := $(BENCH_TMPL) $(BENCH_VND) $(BENCH_PROD) $(BENCH_DSP) $(BENCH_TRK)
BENCH_BINS := $(addprefix $(BUILD)/bench/,$(BENCHES))

# ---- fuzzing: tests/fuzz/<name>.c, clang libFuzzer; one list per module ----
# `make fuzz` builds the library with clang + ASan/UBSan into build-fuzz/ and runs
# every target for FUZZ_SECONDS (seeds: tests/fuzz/corpus/<name>/ when present);
# `make fuzz FUZZ=fuzz_tmpl FUZZ_SECONDS=60` runs only the targets named.
FUZZ_TMPL  := fuzz_tmpl fuzz_email_subs
FUZZ_VND   := fuzz_vnd_resp_twilio fuzz_vnd_resp_vonage fuzz_vnd_resp_sendgrid fuzz_vnd_resp_mailgun \
              fuzz_vnd_wh_twilio fuzz_vnd_wh_vonage fuzz_vnd_wh_sendgrid fuzz_vnd_wh_mailgun \
              fuzz_vnd_sim_forms fuzz_vnd_sim_sendgrid
FUZZ_PROD  := fuzz_aud
FUZZ_SECONDS ?= 300
FUZZ       ?=
FUZZ_RUN   := $(if $(FUZZ),$(FUZZ),$(FUZZ_TMPL) $(FUZZ_VND) $(FUZZ_PROD))
FUZZ_CC    ?= clang
FUZZ_SAN   := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_BINS  := $(addprefix build-fuzz/,$(FUZZ_TMPL) $(FUZZ_VND) $(FUZZ_PROD))

fuzz:
	@$(MAKE) --no-print-directory BUILD=build-fuzz/obj CC=$(FUZZ_CC) \
	    CFLAGS="-O1 -g -fsanitize=fuzzer-no-link $(FUZZ_SAN)" build-fuzz/obj/libtocsin.a
	@set -e; for n in $(FUZZ_RUN); do \
	    echo "fuzz: build build-fuzz/$$n"; \
	    $(FUZZ_CC) -O1 -g -fsanitize=fuzzer $(FUZZ_SAN) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I. \
	        -o build-fuzz/$$n tests/fuzz/$$n.c build-fuzz/obj/libtocsin.a $(LDLIBS); \
	done
	@set -e; for n in $(FUZZ_RUN); do \
	    mkdir -p build-fuzz/corpus/$$n; seeds=; \
	    [ -d tests/fuzz/corpus/$$n ] && seeds=tests/fuzz/corpus/$$n; \
	    echo "fuzz: run $$n for $(FUZZ_SECONDS)s"; \
	    rc=0; build-fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	        -print_final_stats=1 build-fuzz/corpus/$$n $$seeds > build-fuzz/$$n.log 2>&1 || rc=$$?; \
	    tail -n 25 build-fuzz/$$n.log; \
	    if [ $$rc -ne 0 ]; then echo "fuzz: $$n FAILED (exit $$rc), log: build-fuzz/$$n.log"; exit 1; fi; \
	done

.PHONY: all deps test unit it lint lint-src lint-size lint-format demo bench asan fuzz clean
# BIN: where the binary goes (a helper building in its own BUILD dir sets BIN too).
BIN      ?= tocsin
all: $(BIN)

$(BIN): $(BUILD)/core/main.o $(LIB)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(LIB): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS) -lcmocka

$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	    grep -q '^install ok installed' || echo $$p; done; \
	    for cp in $(DEB_CMDS); do command -v $${cp%%:*} > /dev/null || echo $${cp#*:}; done); \
	if [ -n "$$missing" ]; then \
	    echo "make deps: installing$$(echo ' '$$missing)"; \
	    if [ "$$(id -u)" != 0 ]; then SUDO=sudo; fi; \
	    $$SUDO apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

unit: $(UNIT_BINS)
	@tests/run-all.sh --unit-only $(UNIT_BINS)

it: $(BIN)
	@TOCSIN_BIN=$(abspath $(BIN)) tests/run-all.sh --it-only

test: deps
	@tools/lint.sh
	@$(MAKE) --no-print-directory all $(UNIT_BINS)
	@TOCSIN_BIN=$(abspath $(BIN)) tests/run-all.sh $(UNIT_BINS)

# style (tools/lint.sh): lint-src = role comment, banned calls, trailing blanks, line length;
# lint-size = functions <= 120 lines, files <= 1,200 (production code);
# lint-format = clang-format --dry-run -Werror with .clang-format; lint = all three (after the
# checker's own fixture test, tools/lint_test.sh)
lint:
	@tools/lint.sh
lint-src:
	@tools/lint.sh --src
lint-size:
	@tools/lint.sh --size
lint-format:
	@tools/lint.sh --format

demo: deps
	@$(MAKE) --no-print-directory all
	./$(BIN) demo

# the benches' baselines need wrk and nginx; `make bench` installs them (make test does not)
bench: DEB_PKGS += wrk nginx-light
bench: deps
	@$(MAKE) --no-print-directory all $(BENCH_BINS)
	@BUILD=$(BUILD) TOCSIN_BIN=$(abspath $(BIN)) bench/run.sh $(BENCH_BINS)

asan:
	$(MAKE) BUILD=build-asan BIN=build-asan/tocsin \
	    CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" \
	    LDFLAGS="-fsanitize=address,undefined" unit

clean:
	rm -rf build build-asan build-fuzz tocsin tests/out bench/out

-include $(LIB_OBJS:.o=.d) $(BUILD)/core/main.d
