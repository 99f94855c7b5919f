# SPDX-License-Identifier: Apache-2.0
# twostep: see README.md. Contracts (DESIGN.md): `make` leaves build/pam_twostep.so,
# build/twostep and build/twostep-helper; `make install` honours DESTDIR, PREFIX, PAMDIR,
# LIBEXECDIR, MANDIR; `make test` runs every suite; `make demo` is the first run. `make`
# also leaves build/twostep-verify, the lean static login helper the module spawns.

PREFIX     ?= /usr
LIBEXECDIR ?= $(PREFIX)/libexec/twostep
BINDIR     ?= $(PREFIX)/bin
MULTIARCH  := $(shell gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
PAMDIR     ?= /lib/$(MULTIARCH)/security
SYSCONFDIR ?= /etc
DOCDIR     ?= $(PREFIX)/share/doc/twostep
SYSTEMDUNITDIR ?= /lib/systemd/system
MANDIR     ?= $(PREFIX)/share/man
# pam-auth-update reads profiles from this one place, whatever PREFIX is.
PAMCONFIGDIR ?= /usr/share/pam-configs
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/vendor-completions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
DESTDIR    ?=
SWIFT      ?= swift
# Static Swift runtime: installed binaries need no toolchain. Full RELRO and immediate
# binding, and fortified C shims (Debian's hardening defaults). EXTRA_SWIFTFLAGS adds to these.
SWIFTFLAGS ?= -c release --disable-local-rpath --static-swift-stdlib \
	-Xlinker -z -Xlinker relro -Xlinker -z -Xlinker now \
	-Xcc -D_FORTIFY_SOURCE=2 -Xcc -fstack-protector-strong
EXTRA_SWIFTFLAGS ?=
STRIP      ?= strip --strip-unneeded --remove-section=.comment
RELEASE     = .build/release

# The PAM module is Embedded Swift (no Swift runtime, no libstdc++): built here with swiftc
# from the same TwoStepProtocol and TwoStepPAM sources SwiftPM compiles for the tests.
# --gc-sections keeps only the Unicode tables String actually reaches.
SWIFTC     ?= swiftc
CC         ?= cc
ARCH       := $(shell uname -m)
SWIFT_LIB  := $(shell dirname $$(dirname $$(readlink -f $$(command -v $(SWIFTC)))))/lib/swift
EMBEDDED   := $(SWIFTC) -target $(ARCH)-unknown-linux-gnu -enable-experimental-feature Embedded \
	-wmo -parse-as-library -Osize -Xcc -fPIC -Xfrontend -function-sections
MODULE_CFLAGS ?= -O2 -fPIC -Wall -Wextra -D_FORTIFY_SOURCE=2 -fstack-protector-strong
MODULE_SOURCES = $(wildcard Sources/TwoStepProtocol/*.swift Sources/TwoStepPAM/*.swift) \
	Sources/PAMShim/shim.c Sources/PAMShim/include/pamshim.h Sources/PAMShim/exports.map \
	Sources/CTwoStepSys/twostep_peercred.h
MOD        = build/module

# twostep-verify, the lean helper pam_twostep.so spawns when no running helper answers: the
# login path of the helper's sources (protocol, system, crypto, core, store, Verifier,
# LoginSession) built with -D TWOSTEP_LEAN and linked as a static PIE (below): nothing to
# load at exec, so exec to main is short. What it cannot do (enrolment at first login, a
# database store, users /etc/passwd does not answer for, require = GROUPS, FIPS mode) it
# hands to twostep-helper beside it.
LEAN       = build/lean
# -prespecialize-generic-metadata: the generic types the login uses with concrete arguments
# (arrays, dictionaries, optionals of its own types) get their metadata emitted at build
# time, where a one-login process otherwise builds each at run time from its mangled name
# (swift_getTypeByMangledName was about 7% of twostep-verify's samples): 0.19 to 0.43 ms
# less per spawned login in four interleaved 140-round runs.
# Without the implicit _StringProcessing (Regex) and _Concurrency imports: their static
# libraries would add a quarter of the binary's protocol conformances (each first dynamic
# conformance check scans them all), relocations and start-up work; the login sources use
# neither (a String.contains(String) there does not compile: write it with the stdlib).
LEAN_SWIFTC = $(SWIFTC) -O -wmo -Xfrontend -prespecialize-generic-metadata -parse-as-library -D TWOSTEP_LEAN -I $(LEAN) -I $(LEAN)/CTwoStepSys \
	-I Sources/COpenSSL -I Sources/CZlib -Xcc -D_FORTIFY_SOURCE=2 -Xcc -fstack-protector-strong \
	-Xfrontend -disable-implicit-string-processing-module-import -Xfrontend -disable-implicit-concurrency-module-import
# Every C file of CTwoStepSys (the Swift side calls into all of them).
LEAN_C     = $(patsubst Sources/CTwoStepSys/%.c,$(LEAN)/%.o,$(wildcard Sources/CTwoStepSys/*.c))
LEAN_MODULES = TwoStepProtocol TwoStepSystem TwoStepCrypto TwoStepCore TwoStepStore TwoStepService TwoStepServer
LEAN_FILES_TwoStepProtocol = $(wildcard Sources/TwoStepProtocol/*.swift)
LEAN_FILES_TwoStepSystem   = $(wildcard Sources/TwoStepSystem/*.swift)
LEAN_FILES_TwoStepCrypto   = $(wildcard Sources/TwoStepCrypto/*.swift)
LEAN_FILES_TwoStepCore     = $(wildcard Sources/TwoStepCore/*.swift)
# Not AuditReader (gz reading: zlib's inflate, and with it zlib's copyright string that
# lintian's embedded-library looks for, would be linked into the static executable).
LEAN_FILES_TwoStepStore    = $(filter-out Sources/TwoStepStore/AuditReader.swift,$(wildcard Sources/TwoStepStore/*.swift))
LEAN_FILES_TwoStepService  = Sources/TwoStepService/Verifier.swift Sources/TwoStepService/Conversation.swift \
	Sources/TwoStepService/TrustedKeys.swift Sources/TwoStepService/RecoveryLogin.swift Sources/TwoStepService/ClockWarning.swift
LEAN_FILES_TwoStepServer   = Sources/TwoStepServer/LoginSession.swift Sources/TwoStepServer/HelperLink.swift \
	Sources/TwoStepServer/Inherited.swift Sources/twostep-verify/Lean.swift
LEAN_SOURCES = $(foreach m,$(LEAN_MODULES),$(LEAN_FILES_$(m))) Sources/twostep-verify/main.swift \
	$(wildcard Sources/CTwoStepSys/*.c Sources/CTwoStepSys/*.h Sources/CTwoStepSys/include/*.h)

.PHONY: all deps test unit-test test-sanitize integration-test demo bench bench-scale fuzz fuzz-build install uninstall clean man completions

all: build/pam_twostep.so build/twostep build/twostep-helper build/twostep-verify build/pam_harness

deps:
	@scripts/deps.sh build

build/twostep build/twostep-helper &: deps FORCE
	$(SWIFT) build $(SWIFTFLAGS) $(EXTRA_SWIFTFLAGS)
	@mkdir -p build
	install -m 0755 $(RELEASE)/twostep build/twostep
	install -m 0755 $(RELEASE)/twostep-helper build/twostep-helper

build/pam_twostep.so: $(MODULE_SOURCES) | deps
	@mkdir -p $(MOD)
	$(EMBEDDED) -module-name TwoStepProtocol -emit-module -emit-module-path $(MOD)/TwoStepProtocol.swiftmodule \
	  -c $(filter Sources/TwoStepProtocol/%.swift,$^) -o $(MOD)/TwoStepProtocol.o
	$(EMBEDDED) -module-name TwoStepPAM -I $(MOD) -I Sources/PAMShim/include \
	  -c $(filter Sources/TwoStepPAM/%.swift,$^) -o $(MOD)/TwoStepPAM.o
	$(CC) $(MODULE_CFLAGS) -I Sources/PAMShim/include -c Sources/PAMShim/shim.c -o $(MOD)/shim.o
	$(CC) -shared -o $@ $(MOD)/shim.o $(MOD)/TwoStepPAM.o $(MOD)/TwoStepProtocol.o \
	  $(SWIFT_LIB)/embedded/$(ARCH)-unknown-linux-gnu/libswiftUnicodeDataTables.a -lpam \
	  -Wl,--gc-sections -Wl,-z,nodelete -Wl,-z,relro -Wl,-z,now -Wl,--as-needed \
	  -Wl,--version-script=Sources/PAMShim/exports.map

# Linked fully static and position-independent (-static-pie: ASLR as for any PIE, but no
# dynamic loader, no shared libraries to map and no symbol look-ups at exec): the Swift
# runtime, libstdc++, libgcc, libcrypto, zlib (its crc32 alone) and glibc itself, from static
# archives. That saves 0.4 to 0.5 ms (15%) per spawned login against linking glibc and zlib
# dynamically (README.md, "Speed"). A static glibc would load NSS modules (any passwd source
# after `files`: systemd, sss, ldap) with dlopen, which is not safe in a static process,
# so twostep-verify calls no NSS at all: the login's user is answered from /etc/passwd where
# glibc would answer from it (PasswdFileCache.lookUpOnce), and every other login is handed
# to twostep-helper (LeanLogin in Sources/twostep-verify/Lean.swift). The checks after the
# link fail the build when the executable is not a static PIE with full RELRO, when it links
# a passwd or group lookup at all, or when twostep's own objects call any other function
# that would load a module at run time (host look-ups, dlopen, iconv, locales; libcrypto's
# DSO and BIO code links some of them, which the login never runs).
# The archives sit alone in $(LEAN)/static, searched first, so -lcrypto/-lstdc++/-lz (the
# module maps' autolinks, the Swift driver) find them before the shared libraries. The Swift
# toolchain's ld.lld: gold cannot link a static PIE, and ld.bfd puts the Swift runtime's
# writable .rodata in one segment with .data.rel.ro and .got and then makes no RELRO at all.
# --no-export-dynamic undoes the driver's -export-dynamic.
empty :=
space := $(empty) $(empty)
LEAN_NSS_CALLS = getpwnam getpwnam_r getpwuid getpwuid_r getpwent getgrouplist getgrgid_r getgrgid \
	getgrnam getgrnam_r getgrent initgroups getspnam
LEAN_LOADING_CALLS = $(LEAN_NSS_CALLS) getaddrinfo gethostbyname gethostbyname_r gethostbyaddr \
	getservbyname getservbyname_r getnameinfo dlopen dlmopen iconv_open setlocale newlocale
build/twostep-verify: $(LEAN)/main.o $(foreach m,$(LEAN_MODULES),$(LEAN)/$(m).o) $(LEAN_C) Makefile
	@mkdir -p $(LEAN)/static
	ln -sf $$($(CC) -print-file-name=libcrypto.a) $$($(CC) -print-file-name=libstdc++.a) \
	  $$($(CC) -print-file-name=libz.a) $(LEAN)/static/
	rm -f $@
	$(SWIFTC) -static-stdlib -use-ld=lld -L $(LEAN)/static -o $@ $(filter %.o,$^) -Xclang-linker -static-libgcc \
	  -Xclang-linker -static-pie -Xlinker -z -Xlinker relro -Xlinker -z -Xlinker now -Xlinker --gc-sections \
	  -Xlinker --no-export-dynamic > $(LEAN)/link.log 2>&1 || { cat $(LEAN)/link.log >&2; rm -f $@; exit 1; }
	@# Anything the link said but clang's note that the driver's -pie goes unused.
	@grep -v "argument unused during compilation: '-pie'" $(LEAN)/link.log >&2 || true
	@test -x $@ && readelf -lW $@ | grep -q ' DYN ' && ! readelf -lW $@ | grep -q INTERP && \
	  ! readelf -dW $@ | grep -q NEEDED && readelf -lW $@ | grep -q GNU_RELRO && readelf -dW $@ | grep -q BIND_NOW || \
	  { echo "twostep-verify: not a static PIE with full RELRO" >&2; rm -f $@; exit 1; }
	@nss=$$(nm $@ | awk '$$2 ~ /^[TtWw]$$/ {print $$3}' | grep -xE '$(subst $(space),|,$(strip $(LEAN_NSS_CALLS)))'); \
	  [ -z "$$nss" ] || { echo "twostep-verify: links NSS lookups: $$nss" >&2; rm -f $@; exit 1; }
	@own=$$(nm -u $(filter %.o,$^) | awk '{print $$2}' | grep -xE '$(subst $(space),|,$(strip $(LEAN_LOADING_CALLS)))' | sort -u); \
	  [ -z "$$own" ] || { echo "twostep-verify: its own code calls: $$own" >&2; rm -f $@; exit 1; }

# One object and .swiftmodule per module, each after the modules it imports.
$(LEAN)/TwoStepProtocol.o: $(LEAN_FILES_TwoStepProtocol)
$(LEAN)/TwoStepSystem.o: $(LEAN_FILES_TwoStepSystem) $(LEAN)/TwoStepProtocol.o $(LEAN_C)
$(LEAN)/TwoStepCrypto.o: $(LEAN_FILES_TwoStepCrypto) Sources/COpenSSL/shim.h
$(LEAN)/TwoStepCore.o: $(LEAN_FILES_TwoStepCore) $(LEAN)/TwoStepCrypto.o
$(LEAN)/TwoStepStore.o: $(LEAN_FILES_TwoStepStore) $(LEAN)/TwoStepCore.o $(LEAN)/TwoStepSystem.o
$(LEAN)/TwoStepService.o: $(LEAN_FILES_TwoStepService) $(LEAN)/TwoStepStore.o
$(LEAN)/TwoStepServer.o: $(LEAN_FILES_TwoStepServer) $(LEAN)/TwoStepService.o
# Flags live here (LEAN_SWIFTC, the link line): a changed Makefile rebuilds the lean objects
# and relinks. swiftc leaves an object it would write unchanged untouched, hence the touch.
$(foreach m,$(LEAN_MODULES),$(LEAN)/$(m).o) $(LEAN)/main.o: Makefile
$(LEAN)/%.o: | deps
	@mkdir -p $(LEAN)
	$(LEAN_SWIFTC) -module-name $* -emit-module -emit-module-path $(LEAN)/$*.swiftmodule \
	  -c $(filter %.swift,$^) -o $@
	@touch $@

$(LEAN)/main.o: Sources/twostep-verify/main.swift $(LEAN)/TwoStepServer.o
	$(LEAN_SWIFTC:-parse-as-library=) -module-name twostep_verify -c $< -o $@
	@touch $@

$(LEAN_C): $(LEAN)/%.o: Sources/CTwoStepSys/%.c $(wildcard Sources/CTwoStepSys/*.h Sources/CTwoStepSys/include/*.h)
	@mkdir -p $(LEAN)/CTwoStepSys
	printf 'module CTwoStepSys {\n  umbrella "%s"\n  export *\n}\n' "$(CURDIR)/Sources/CTwoStepSys/include" \
	  > $(LEAN)/CTwoStepSys/module.modulemap
	$(CC) -O2 -Wall -D_FORTIFY_SOURCE=2 -fstack-protector-strong -I Sources/CTwoStepSys/include -c $< -o $@

build/pam_harness: tests/harness/pam_harness.c deps
	@mkdir -p build
	cc -O2 -Wall -Wextra -o $@ $< -lpam -ldl

FORCE:

# Regenerates the committed man/twostep.1 from the built CLI (tests/test_manpages.py fails
# when it is stale). Run it after changing any command, option or help text.
man: build/twostep
	scripts/gen-manpage.py --cli build/twostep -o man/twostep.1

# Shell completions, generated from the built CLI at install time (never committed, so
# never stale): argument-parser writes them from the same definitions as --help. bash
# sources its completions, so the "#!/bin/bash" line argument-parser writes goes (lintian:
# bash-completion-with-hashbang).
completions:
	@mkdir -p build/completions
	build/twostep --generate-completion-script bash > build/completions/twostep.bash.in
	sed '1{/^#!/d}' build/completions/twostep.bash.in > build/completions/twostep.bash
	rm -f build/completions/twostep.bash.in
	build/twostep --generate-completion-script zsh > build/completions/_twostep
	build/twostep --generate-completion-script fish > build/completions/twostep.fish

test:
	@scripts/deps.sh test
	$(MAKE) all
	$(MAKE) unit-test test-sanitize integration-test

unit-test:
	$(SWIFT) test --parallel

# The unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer, and separately
# under ThreadSanitizer (the two cannot share a build), each in its own scratch path.
# swiftc on Linux has no -sanitize=undefined (Swift traps its own overflow and bounds
# errors): UBSan instruments the C targets, and the ASan runtime carries its handlers.
# Leak detection is off: the Swift runtime and XCTest keep allocations until exit.
test-sanitize:
	ASAN_OPTIONS=detect_leaks=0 $(SWIFT) test --scratch-path .build-asan --sanitize=address \
		-Xcc -fsanitize=undefined -Xcc -fno-sanitize-recover=undefined
	$(SWIFT) test --scratch-path .build-tsan --sanitize=thread

integration-test:
	/usr/bin/python3 -m pytest -q tests

demo:
	@scripts/deps.sh demo
	$(MAKE) all
	scripts/demo.sh

bench:
	@scripts/deps.sh bench
	$(MAKE) all
	bench/run.sh

# The same at scale: a store of BENCH_SCALE_USERS (default 100,000) users built with
# `admin import --batch`; import rate, login cost at few vs many users, list/report times,
# rotate-key rate (bench/scale.sh, bench/README.md).
bench-scale:
	@scripts/deps.sh bench
	$(MAKE) all
	bench/scale.sh

# libFuzzer targets (swiftc -sanitize=fuzzer,address) into .build-fuzz/; see Fuzz/README.md.
# `make test` runs each for a fixed number of inputs from a fixed seed (tests/test_fuzz.py);
# this explores: FUZZ_SECONDS per target, a new seed each time.
FUZZ_SECONDS ?= 60
fuzz-build:
	Fuzz/build.sh

fuzz: fuzz-build
	TWOSTEP_FUZZ_SECONDS=$(FUZZ_SECONDS) /usr/bin/python3 -m pytest -q tests/test_fuzz.py

# The module's built-in defaults are helper=/usr/libexec/twostep/twostep-verify and
# config=/etc/twostep/twostep.conf, and the units run the helper from there. With another
# LIBEXECDIR or SYSCONFDIR, the installed units, PAM profile and example stacks are
# rewritten to name the installed paths (identical files for the defaults).
MODULE_PATH_ARGS = $(strip $(if $(filter-out /usr/libexec/twostep,$(LIBEXECDIR)),helper=$(LIBEXECDIR)/twostep-verify) \
	$(if $(filter-out /etc,$(SYSCONFDIR)),config=$(SYSCONFDIR)/twostep/twostep.conf))
INSTALL_PATHS = sed -e 's|/usr/libexec/twostep/|$(LIBEXECDIR)/|g' -e 's|/etc/twostep/|$(SYSCONFDIR)/twostep/|g' \
	-e 's|/usr/share/doc/twostep/|$(DOCDIR)/|g' -e 's|/usr/share/man/|$(MANDIR)/|g' \
	$(if $(MODULE_PATH_ARGS),-e '/required/s|pam_twostep\.so|pam_twostep.so $(MODULE_PATH_ARGS)|')
install: build/pam_twostep.so build/twostep build/twostep-helper build/twostep-verify
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(PAMDIR) $(DESTDIR)$(DOCDIR)/examples
	install -m 0755 build/twostep $(DESTDIR)$(BINDIR)/twostep
	install -m 0755 build/twostep-helper $(DESTDIR)$(LIBEXECDIR)/twostep-helper
	install -m 0755 build/twostep-verify $(DESTDIR)$(LIBEXECDIR)/twostep-verify
	install -m 0644 build/pam_twostep.so $(DESTDIR)$(PAMDIR)/pam_twostep.so
	$(STRIP) $(DESTDIR)$(PAMDIR)/pam_twostep.so $(DESTDIR)$(BINDIR)/twostep $(DESTDIR)$(LIBEXECDIR)/twostep-helper \
	  $(DESTDIR)$(LIBEXECDIR)/twostep-verify
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/twostep
	[ -e $(DESTDIR)$(SYSCONFDIR)/twostep/twostep.conf ] || \
	  install -m 0644 packaging/twostep.conf $(DESTDIR)$(SYSCONFDIR)/twostep/twostep.conf
	for f in pam.d/sshd pam.d/sudo; do $(INSTALL_PATHS) $$f > $(DESTDIR)$(DOCDIR)/examples/$${f##*/}; \
	  chmod 0644 $(DESTDIR)$(DOCDIR)/examples/$${f##*/}; done
	install -d $(DESTDIR)$(SYSCONFDIR)/pam.d $(DESTDIR)$(SYSTEMDUNITDIR)
	[ -e $(DESTDIR)$(SYSCONFDIR)/pam.d/twostep ] || install -m 0644 pam.d/twostep $(DESTDIR)$(SYSCONFDIR)/pam.d/twostep
	for f in packaging/systemd/*.socket packaging/systemd/*.service; do \
	  $(INSTALL_PATHS) $$f > $(DESTDIR)$(SYSTEMDUNITDIR)/$${f##*/}; chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/$${f##*/}; done
	install -D -m 0644 packaging/logrotate/twostep $(DESTDIR)$(SYSCONFDIR)/logrotate.d/twostep
	install -m 0644 README.md SECURITY.md docs/*.md $(DESTDIR)$(DOCDIR)/
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0644 man/twostep.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 man/twostep.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 man/pam_twostep.8 man/twostep-helper.8 $(DESTDIR)$(MANDIR)/man8/
	install -d $(DESTDIR)$(PAMCONFIGDIR)
	$(INSTALL_PATHS) packaging/pam-configs/twostep > $(DESTDIR)$(PAMCONFIGDIR)/twostep
	chmod 0644 $(DESTDIR)$(PAMCONFIGDIR)/twostep
	$(MAKE) completions
	install -d $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	install -m 0644 build/completions/twostep.bash $(DESTDIR)$(BASHCOMPDIR)/twostep
	install -m 0644 build/completions/_twostep $(DESTDIR)$(ZSHCOMPDIR)/_twostep
	install -m 0644 build/completions/twostep.fish $(DESTDIR)$(FISHCOMPDIR)/twostep.fish

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/twostep $(DESTDIR)$(LIBEXECDIR)/twostep-helper $(DESTDIR)$(LIBEXECDIR)/twostep-verify \
	      $(DESTDIR)$(PAMDIR)/pam_twostep.so
	rm -rf $(DESTDIR)$(DOCDIR)
	rm -f $(DESTDIR)$(SYSTEMDUNITDIR)/twostep-helper.socket $(DESTDIR)$(SYSTEMDUNITDIR)/twostep-helper@.service \
	      $(DESTDIR)$(SYSTEMDUNITDIR)/twostep-helperd.socket $(DESTDIR)$(SYSTEMDUNITDIR)/twostep-helperd.service
	rm -f $(DESTDIR)$(MANDIR)/man1/twostep.1 $(DESTDIR)$(MANDIR)/man5/twostep.conf.5 \
	      $(DESTDIR)$(MANDIR)/man8/pam_twostep.8 $(DESTDIR)$(MANDIR)/man8/twostep-helper.8 \
	      $(DESTDIR)$(PAMCONFIGDIR)/twostep $(DESTDIR)$(BASHCOMPDIR)/twostep \
	      $(DESTDIR)$(ZSHCOMPDIR)/_twostep $(DESTDIR)$(FISHCOMPDIR)/twostep.fish \
	      $(DESTDIR)$(SYSCONFDIR)/logrotate.d/twostep

clean:
	rm -rf build .build .build-fuzz
