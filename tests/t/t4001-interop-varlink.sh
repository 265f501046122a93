#!/bin/sh
# Guards issue 9's promise that a varlink client nobody on this project
# wrote works with ferryd from what it serves alone, checked with an
# independent implementation: Debian's varlink/go
# (golang-github-varlink-go-dev), through tests/interop/varlink/main.go.
# Against a real ferryd syncing with a real ferry-server, that program
# parses every served interface, and the installed io.ferry.varlink, with
# varlink/go's idl package (io.ferry once declared "type Status" beside
# "method Status", which it refuses),
# calls GetInfo the way varlink/go does ("parameters": null, which ferryd
# once refused), calls every method of io.ferry with valid arguments,
# type-checks every reply and error against the parsed interface, streams
# Watch and sees a Put made on another connection, and gets
# InvalidParameter{parameter} (and nothing more) for ill-typed parameters.
#
# The Go program is built here, offline: GO111MODULE=off with GOPATH
# ending in /usr/share/gocode, where Debian's golang-*-dev packages put
# their sources, and the build cache in the build directory.  Without go
# or the package the test fails (tests/deps.sh installs both), naming the
# Debian packages.

. "$(dirname "$0")/sync-lib.sh"

interop_src=$FERRY_SRC_DIR/tests/interop/varlink
interop_dir=$FERRY_BUILD_DIR/tests/interop-build
interop_bin=$interop_dir/varlink-interop
gocode=/usr/share/gocode
go_ms=

test_expect_success 'build the client against Debian'"'"'s varlink/go, offline' '
	if ! command -v go >/dev/null 2>&1; then
		echo "go is missing: apt-get install golang-go" \
		    "golang-github-varlink-go-dev (tests/deps.sh installs them)"
		return 1
	fi &&
	if [ ! -f "$gocode/src/github.com/varlink/go/varlink/idl/idl.go" ]; then
		echo "varlink/go is missing from $gocode: apt-get install" \
		    "golang-github-varlink-go-dev (tests/deps.sh installs it)"
		return 1
	fi &&
	mkdir -p "$interop_dir/gopath" "$interop_dir/cache" &&
	t0=$(now_ms) &&
	env GO111MODULE=off GOFLAGS= GOPROXY=off GOTOOLCHAIN=local \
	    GOPATH="$interop_dir/gopath:$gocode" GOCACHE="$interop_dir/cache" \
	    go build -o "$interop_bin" "$interop_src/main.go" &&
	go_ms=$(( $(now_ms) - t0 )) &&
	test -x "$interop_bin"
'
[ -n "$go_ms" ] && echo "# go build took $go_ms ms"

test_expect_success 'setup: a server, A and B syncing, an open conflict on B' '
	server_start s --open &&
	syncd_start A s &&
	syncd_start B s &&
	edit_conflict s A B cf x "{\"v\":\"base\"}" "{\"v\":\"a\"}" \
	    "{\"v\":\"b\"}" &&
	test_equal "open conflicts" 1 "$(grep -c . "$TEST_DIR/.ids")"
'

test_expect_success 'varlink/go: every interface, every method, every reply' '
	timeout -k 5 150 "$interop_bin" "$(ferryd_sock B)" interop \
	    "$FERRY_SRC_DIR/ipc/io.ferry.varlink" >go.out 2>&1
	st=$? &&
	cat go.out &&
	test "$st" = 0 &&
	test_grep "^ok: interface io.ferry parses" go.out &&
	test_grep "io.ferry.varlink parses and is the text served" go.out &&
	test_grep "^ok: every method of io.ferry was called" go.out
'

test_expect_success 'B after the run: resolved, synced, still serving' '
	conflict_ids B >ids &&
	test ! -s ids &&
	get B interop g1 >out &&
	test_grep "\"title\":\"patched\"" out &&
	ferryd_works B &&
	ferryd_stop A &&
	ferryd_stop B &&
	server_stop s
'

test_done
