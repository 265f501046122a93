#!/bin/sh
# Guards "the daemon itself never stops for bad input": every malformed,
# oversized, hostile or abandoned conversation is answered (InvalidParameter
# or an io.ferry error) or ends with that one connection closed, and after
# each one ferryd is the same process and a different client, connected
# before the bad input, still gets its answers.

. "$(dirname "$0")/test-lib.sh"

# A write to the probe client's FIFO must fail, not kill the script.
trap '' PIPE

sock=
pid0=

# The existing client: a vlsend --stream fed from a FIFO on fd 3.
probe_n=0
probe() {
	if ! test_pid_ours "$cpid"; then
		echo "the existing client has gone:"
		cat client.out
		return 1
	fi
	probe_n=$((probe_n + 1))
	printf '%s\0' "{\"method\":\"io.ferry.Get\",\"parameters\":{\"collection\":\"probe\",\"id\":\"p\"}}" >&3 &&
	test_wait_until 10 "[ \$(grep -c . client.out) -ge $probe_n ]" &&
	if ! sed -n "${probe_n}p" client.out | grep -q "\"body\":{\"probe\":true}"; then
		echo "the existing client got a wrong answer:"
		cat client.out
		return 1
	fi
}

# still_fine: same ferryd process, the old client works, a new one too.
still_fine() {
	ferryd_running A &&
	test_equal "ferryd pid" "$pid0" "$(ferryd_pid A)" &&
	probe &&
	ferryd_works A
}

# send BYTES [VLSEND-ARGS]: raw bytes (printf format) to a new connection.
send() {
	_bytes=$1
	shift
	printf "$_bytes" | "$VLSEND" "$sock" "$@"
}

# pipeline N PREFIX [VLSEND-ARGS]: N pipelined calls all answered in order.
pipeline() {
	_n=$1
	_pfx=$2
	shift 2
	"$VLSEND" "$sock" --pipeline "$_n" --prefix "$_pfx" "$@" >pipe.out
	_st=$?
	cat pipe.out
	[ $_st = 0 ] && test_grep "^ok $_n replies in order$" pipe.out
}

# first_error OUT NAME: the first reply is error NAME.  (Our write may
# fail first, if the daemon closed while we sent: a WRITE-ERROR line.)
first_error() {
	grep -v "^WRITE-ERROR" "$1" | head -n 1 >first &&
	test_grep "^{\"error\":\"$2\"" first
}

status_call='{"method":"io.ferry.Status"}'

test_expect_success 'start ferryd and a long-lived client' '
	ferryd_start A &&
	sock=$(ferryd_sock A) &&
	pid0=$(ferryd_pid A) &&
	fcall A Put "{\"collection\":\"probe\",\"id\":\"p\",\"body\":{\"probe\":true}}" >out &&
	test "$(json_int rev out)" = 1 &&
	mkfifo fifo
'
# The FIFO is opened here, at the top level, so fd 3 outlives the tests.
"$VLSEND" "$(ferryd_sock A)" --stream --timeout 600000 <fifo >client.out 2>&1 &
cpid=$!
test_track $cpid
exec 3>fifo

test_expect_success 'the long-lived client works' '
	still_fine
'

test_expect_success 'a truncated frame at EOF: error, then that connection closes' '
	send "{\"method\":\"io.ferry.Get\",\"param" --half-close >out &&
	first_error out org.varlink.service.InvalidParameter &&
	test_grep "^{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"message\"}}\$" out &&
	test "$(tail -n 1 out)" = EOF &&
	still_fine
'

test_expect_success 'a whole message without its NUL at EOF is refused' '
	send "{\"method\":\"io.ferry.Put\",\"parameters\":{\"collection\":\"t\",\"id\":\"nonul\",\"body\":{}}}" \
	    --half-close >out &&
	first_error out org.varlink.service.InvalidParameter &&
	test "$(tail -n 1 out)" = EOF &&
	fcall A Get "{\"collection\":\"t\",\"id\":\"nonul\"}" >out &&
	first_error out io.ferry.NotFound &&
	still_fine
'

test_expect_success 'a frame cut short before its NUL: error, connection goes on' '
	send "{\"method\":\"io.ferry.Ge\0" --then "$status_call" -n 2 >out &&
	first_error out org.varlink.service.InvalidParameter &&
	sed -n 2p out | grep -q "\"status\":{" &&
	still_fine
'

test_expect_success 'invalid JSON and non-objects are InvalidParameter' '
	for m in "{" "}" "" " " "{\"method\":}" "null" "[]" "\"x\"" "42" \
	    "\377\376" "{\"method\":\"io.ferry.Status\"} trailing" \
	    "{\"method\":\"io.ferry.Status\"}{}" "{\"a\":\"\355\240\200\"}" \
	    "{\"method\":\"io.ferry.Status\",\"parameters\":{\"\\\\ud800\":1}}"; do
		send "$m\0" --then "$status_call" -n 2 >out &&
		first_error out org.varlink.service.InvalidParameter &&
		sed -n 2p out | grep -q "\"status\":{" || {
			echo "for message: $m"; cat out; return 1; }
	done &&
	still_fine
'

test_expect_success 'invalid UTF-8 in a body is refused and nothing is written' '
	send "{\"method\":\"io.ferry.Put\",\"parameters\":{\"collection\":\"t\",\"id\":\"utf\",\"body\":{\"s\":\"\377\"}}}\0" -n 1 >out &&
	first_error out org.varlink.service.InvalidParameter &&
	fcall A Get "{\"collection\":\"t\",\"id\":\"utf\"}" >out &&
	first_error out io.ferry.NotFound &&
	still_fine
'

test_expect_success 'duplicate keys are refused at every level; nothing is written' '
	for m in \
	    "{\"method\":\"io.ferry.Get\",\"method\":\"io.ferry.Put\",\"parameters\":{\"collection\":\"t\",\"id\":\"dup\"}}" \
	    "{\"method\":\"io.ferry.Put\",\"parameters\":{\"collection\":\"t\",\"collection\":\"u\",\"id\":\"dup\",\"body\":{}}}" \
	    "{\"method\":\"io.ferry.Put\",\"parameters\":{\"collection\":\"t\",\"id\":\"dup\",\"body\":{\"a\":1,\"a\":2}}}" \
	    "{\"method\":\"io.ferry.Put\",\"parameters\":{\"collection\":\"t\",\"id\":\"dup\",\"body\":{\"x\":{\"a\":1,\"a\":1}}}}"; do
		send "$m\0" -n 1 >out &&
		first_error out org.varlink.service.InvalidParameter || {
			echo "for message: $m"; cat out; return 1; }
	done &&
	for c in t u; do
		fcall A Get "{\"collection\":\"$c\",\"id\":\"dup\"}" >out &&
		first_error out io.ferry.NotFound || return 1
	done &&
	still_fine
'

test_expect_success 'wrong message fields and parameter types are refused' '
	bad="org.varlink.service.InvalidParameter\|io.ferry.InvalidArgument" &&
	for m in \
	    "{\"method\":5}" \
	    "{\"method\":\"\"}" \
	    "{\"method\":null}" \
	    "{\"parameters\":{}}" \
	    "{\"method\":\"io.ferry.Get\",\"parameters\":[]}" \
	    "{\"method\":\"io.ferry.Get\",\"parameters\":\"x\"}" \
	    "{\"method\":\"io.ferry.Status\",\"more\":\"yes\"}" \
	    "{\"method\":\"io.ferry.Status\",\"oneway\":1}" \
	    "{\"method\":\"io.ferry.Status\",\"more\":true,\"oneway\":true}" \
	    "{\"method\":\"io.ferry.Status\",\"upgrade\":true}" \
	    "{\"method\":\"io.ferry.Get\",\"parameters\":{\"collection\":1,\"id\":\"x\"}}" \
	    "{\"method\":\"io.ferry.Get\",\"parameters\":{\"collection\":\"t\",\"id\":true}}" \
	    "{\"method\":\"io.ferry.Get\",\"parameters\":{\"collection\":\"t\",\"id\":null}}" \
	    "{\"method\":\"io.ferry.Get\",\"parameters\":{\"collection\":[],\"id\":\"x\"}}" \
	    "{\"method\":\"io.ferry.Get\",\"parameters\":{\"collection\":\"t\"}}" \
	    "{\"method\":\"io.ferry.Put\",\"parameters\":{\"collection\":\"t\",\"id\":\"x\",\"body\":{},\"if_rev\":1.5}}" \
	    "{\"method\":\"io.ferry.Put\",\"parameters\":{\"collection\":\"t\",\"id\":\"x\",\"body\":{},\"if_rev\":\"1\"}}" \
	    "{\"method\":\"io.ferry.Put\",\"parameters\":{\"collection\":\"t\",\"id\":\"x\",\"body\":{},\"if_rev\":9223372036854775808}}" \
	    "{\"method\":\"io.ferry.Put\",\"parameters\":{\"collection\":\"t\",\"id\":\"x\",\"body\":{},\"if_rev\":true}}" \
	    "{\"method\":\"io.ferry.List\",\"parameters\":{\"collection\":\"t\",\"limit\":\"x\"}}" \
	    "{\"method\":\"io.ferry.List\",\"parameters\":{\"collection\":\"t\",\"after\":5}}" \
	    "{\"method\":\"io.ferry.Watch\",\"parameters\":{\"since\":[]},\"more\":true}" \
	    "{\"method\":\"io.ferry.Status\",\"parameters\":{\"x\":1}}" \
	    "{\"method\":\"org.varlink.service.GetInterfaceDescription\",\"parameters\":{\"interface\":7}}"; do
		send "$m\0" --then "$status_call" -n 2 >out &&
		head -n 1 out | grep -q "^{\"error\":\"\($bad\)\"" &&
		sed -n 2p out | grep -q "\"status\":{" || {
			echo "for message: $m"; cat out; return 1; }
	done &&
	fcall A Get "{\"collection\":\"t\",\"id\":\"x\"}" >out &&
	first_error out io.ferry.NotFound &&
	still_fine
'

test_expect_success 'unknown methods and interfaces are errors, not closes' '
	send "{\"method\":\"io.ferry.Nope\"}\0{\"method\":\"nodot\"}\0{\"method\":\"io.ferry.\"}\0{\"method\":\".Get\"}\0" \
	    --then "$status_call" -n 5 >out &&
	sed -n 1p out | grep -q "^{\"error\":\"org.varlink.service.MethodNotFound\"" &&
	sed -n 2p out | grep -q "^{\"error\":\"org.varlink.service.\(InterfaceNotFound\|InvalidParameter\|MethodNotFound\)\"" &&
	sed -n 3p out | grep -q "^{\"error\":\"org.varlink.service.\(InterfaceNotFound\|InvalidParameter\|MethodNotFound\)\"" &&
	sed -n 4p out | grep -q "^{\"error\":\"org.varlink.service.\(InterfaceNotFound\|InvalidParameter\|MethodNotFound\)\"" &&
	sed -n 5p out | grep -q "\"status\":{" &&
	still_fine
'

test_expect_success 'bad collection and id names are InvalidArgument' '
	long=$(printf "%0129d" 0) &&
	for p in "\"collection\":\"../etc\",\"id\":\"x\"" \
	    "\"collection\":\"a b\",\"id\":\"x\"" \
	    "\"collection\":\"$long\",\"id\":\"x\"" \
	    "\"collection\":\"t\",\"id\":\"$long\"" \
	    "\"collection\":\"t\",\"id\":\"x/y\"" \
	    "\"collection\":\"t\",\"id\":\"\"" \
	    "\"collection\":\"t\\\\n\",\"id\":\"x\""; do
		send "{\"method\":\"io.ferry.Put\",\"parameters\":{$p,\"body\":{}}}\0" -n 1 >out &&
		first_error out io.ferry.InvalidArgument || {
			echo "for: $p"; cat out; return 1; }
	done &&
	still_fine
'

test_expect_success 'a body that is not an object is InvalidParameter' '
	for b in "[]" "[{}]" "\"s\"" 1 null true; do
		send "{\"method\":\"io.ferry.Put\",\"parameters\":{\"collection\":\"t\",\"id\":\"nb\",\"body\":$b}}\0" -n 1 >out &&
		first_error out org.varlink.service.InvalidParameter &&
		test_grep "\"parameters\":{\"parameter\":\"body\"}}\$" out || return 1
	done &&
	fcall A Get "{\"collection\":\"t\",\"id\":\"nb\"}" >out &&
	first_error out io.ferry.NotFound &&
	still_fine
'

test_expect_success 'a message of 8 MiB + 1 bytes: error, connection closed' '
	"$VLSEND" "$sock" --big 8388609 --collection big --prefix over >out &&
	first_error out org.varlink.service.InvalidParameter &&
	test_grep "\"parameters\":{\"parameter\":\"message\"}}\$" out &&
	test "$(tail -n 1 out)" = EOF &&
	fcall A Get "{\"collection\":\"big\",\"id\":\"overbig\"}" >out &&
	first_error out io.ferry.NotFound &&
	still_fine
'

# Whatever the largest document ferryd takes, it must be readable back in
# one reply within the 8 MiB message limit: never store what cannot be read.
test_expect_success 'a message of exactly 8 MiB: refused cleanly or readable' '
	"$VLSEND" "$sock" --big 8388608 --collection big --prefix max -n 1 >out &&
	if grep -q "^{\"error\"" out; then
		first_error out io.ferry.InvalidArgument &&
		test_grep "\"field\":\"body\"" out &&
		fcall A Get "{\"collection\":\"big\",\"id\":\"maxbig\"}" >out &&
		first_error out io.ferry.NotFound
	else
		test "$(json_int rev out)" = 1 &&
		fcall A Get "{\"collection\":\"big\",\"id\":\"maxbig\"}" >out &&
		test "$(json_int rev out)" = 1 &&
		test "$(wc -c <out)" -le 8388609
	fi &&
	still_fine
'

test_expect_success 'a 4 MB document is taken and reads back whole' '
	"$VLSEND" "$sock" --big 4000000 --collection big --prefix four -n 1 >out &&
	test "$(json_int rev out)" = 1 &&
	fcall A Get "{\"collection\":\"big\",\"id\":\"fourbig\"}" >out &&
	test "$(json_int rev out)" = 1 &&
	test "$(wc -c <out)" -gt 3999900 &&
	still_fine
'

# "Messages over 8 MiB are refused", so none may be sent either: a page of
# large documents must end early (with next) rather than exceed the limit
# every client is entitled to enforce.
test_expect_success 'List pages instead of answering more than 8 MiB' '
	for p in a b c; do
		"$VLSEND" "$sock" --big 4000000 --collection biglist --prefix $p \
		    -n 1 >out &&
		test "$(json_int rev out)" = 1 || return 1
	done &&
	: >ids && after= && n=0 &&
	while [ $n -lt 5 ]; do
		fcall A List "{\"collection\":\"biglist\"${after:+,\"after\":\"$after\"}}" >page &&
		size=$(wc -c <page) &&
		if [ "$size" -gt 8388609 ]; then
			echo "List replied with $size bytes"
			return 1
		fi &&
		grep -o "\"id\":\"[abc]big\"" page >>ids &&
		after=$(json_str next page) &&
		[ -n "$after" ] || break
		n=$((n + 1))
	done &&
	printf "\"id\":\"abig\"\n\"id\":\"bbig\"\n\"id\":\"cbig\"\n" >want &&
	test_cmp want ids &&
	still_fine
'

test_expect_success '10^5-deep nesting is refused; modest nesting is kept' '
	"$VLSEND" "$sock" --deep 100000 --collection deep -n 1 >out &&
	first_error out org.varlink.service.InvalidParameter &&
	"$VLSEND" "$sock" --deep 100 --collection deep -n 1 >out &&
	first_error out io.ferry.InvalidArgument &&
	test_grep "nested deeper than 64 levels" out &&
	"$VLSEND" "$sock" --deep 60 --collection deep -n 1 >out &&
	test "$(json_int rev out)" = 1 &&
	fcall A Get "{\"collection\":\"deep\",\"id\":\"vdeep60\"}" >out &&
	test_grep "\"a\":\[\{60\}\]\{60\}}" out &&
	still_fine
'

test_expect_success '1000 pipelined calls are all answered, in order' '
	pipeline 1000 p1k &&
	still_fine
'

test_expect_success '10000 pipelined calls (beyond the per-connection cap)' '
	pipeline 10000 p10k --timeout 60000 &&
	still_fine
'

test_expect_success 'a client that disconnects mid-stream' '
	"$VLSEND" "$sock" --disconnect-mid-stream >out &&
	test_grep "\"ready\":true" out &&
	test_grep "^closed mid-stream$" out &&
	still_fine
'

test_expect_success 'many watchers dropped during replay' '
	i=0 &&
	while [ $i -lt 20 ]; do
		"$VLSEND" "$sock" --disconnect-mid-stream >out &&
		test_grep "^closed mid-stream$" out || return 1
		i=$((i + 1))
	done &&
	still_fine
'

test_expect_success 'a client that leaves with thousands of calls unanswered' '
	{ "$VLSEND" "$sock" --pipeline 6000 --prefix gone --timeout 1 >out; true; } &&
	test_grep "^FAIL" out &&
	still_fine &&
	fcall A List "{\"collection\":\"vlsend\",\"after\":\"gone\",\"limit\":1000}" >out &&
	test_grep "\"docs\":\[" out
'

test_expect_success 'oneway calls get no reply, but happen' '
	send "{\"method\":\"io.ferry.Put\",\"parameters\":{\"collection\":\"t\",\"id\":\"ow\",\"body\":{\"o\":1}},\"oneway\":true}\0{\"method\":\"io.ferry.Get\",\"parameters\":{\"collection\":\"t\",\"id\":\"ow\"}}\0" \
	    -n 1 >out &&
	test_grep "\"body\":{\"o\":1}" out &&
	still_fine
'

test_expect_success 'connections that close at once or send garbage' '
	i=0 &&
	while [ $i -lt 50 ]; do
		printf "\0\0\0garbage\0" | "$VLSEND" "$sock" --half-close --timeout 5000 >out &&
		test "$(tail -n 1 out)" = EOF &&
		: | "$VLSEND" "$sock" --half-close --timeout 5000 >out &&
		test "$(tail -n 1 out)" = EOF || return 1
		i=$((i + 1))
	done &&
	still_fine
'

test_expect_success ROOT,SETPRIV 'a peer of another uid is closed at once' '
	setpriv --reuid=65534 --regid=65534 --clear-groups "$VLSEND" \
	    >/dev/null 2>&1;
	if [ $? != 2 ]; then
		echo "uid 65534 cannot run $VLSEND; not checked"
		return 0
	fi &&
	chmod 0711 "$TEST_DIR" "$TEST_DIR/run" &&
	chmod 0666 "$sock" &&
	printf "%s\0" "$status_call" |
	    setpriv --reuid=65534 --regid=65534 --clear-groups \
	    "$VLSEND" "$sock" --timeout 5000 >out 2>&1;
	chmod 0700 "$TEST_DIR" "$TEST_DIR/run" &&
	chmod 0600 "$sock" &&
	cat out &&
	test_grep ! "^{" out &&
	test "$(tail -n 1 out)" = EOF &&
	test_grep "refused a connection from uid 65534" "$(ferryd_log A)" &&
	still_fine
'

test_expect_success 'the long-lived client ends cleanly' '
	exec 3>&- &&
	test_wait_exit $cpid &&
	test "$(tail -n 1 client.out)" = EOF &&
	test "$(grep -c "\"probe\":true" client.out)" = "$probe_n" &&
	ferryd_stop A
'

test_done
