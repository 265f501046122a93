#!/bin/sh
# The fault proxy does what each action promises, against a real
# ferry-server.  The fault tests (t3xxx) trust it to drop, reset,
# duplicate, slow and refuse exactly as asked: a proxy that silently passed
# a request it was told to drop would let the bugs those tests hunt for
# (a lost push reply, a doubled push) go unseen.  Each action is checked
# on the wire (what srvclient gets) and at the server (what it applied),
# and so are the rule semantics: counts, newest rule first, default,
# clear, chaos from a seed, cut, hold and release, and refusing bad
# commands.

. "$(dirname "$0")/fault-lib.sh"

test_expect_success 'a server and the proxy in front of it' '
	server_start srv --open &&
	proxy_start px srv --seed 7 &&
	preq px probe GET /v1/info >out &&
	status_is 200 out &&
	test_grep "\"protocol\":1" out &&
	proxy_ctl px stats >stats &&
	test_grep "^requests=1 passed=1 drop-after=0 drop-before=0 reset-mid=0 dup=0 trickle=0 refuse=0 hold=0$" stats
'

# pushed KEY: how many changes of KEY's device the server holds.
pushed() {
	server_changes srv >"$TEST_DIR/.all" || return 1
	grep -c "\"change\":\"$(key_of "$1"):" "$TEST_DIR/.all"
}

test_expect_success 'drop-before: the server never sees the push' '
	proxy_ctl px "set /v1/push drop-before 1" >ctl &&
	test_grep "^ok$" ctl &&
	it1=$(item dev put notes n1 0 1 "{\"a\":1}") &&
	test_expect_code 3 ppush px dev "$it1" >out &&
	test_grep "^CURL-ERROR" out &&
	test_equal "changes of dev" 0 "$(pushed dev)"
'

test_expect_success 'drop-after: the server applied it, the reply is lost' '
	proxy_ctl px "set /v1/push drop-after 1" &&
	test_expect_code 3 ppush px dev "$it1" >out &&
	test_grep "^CURL-ERROR" out &&
	test_equal "changes of dev" 1 "$(pushed dev)" &&
	server_doc srv notes n1 >doc &&
	status_is 200 doc
'

test_expect_success 'the count ran out: the same push now passes' '
	ppush px dev "$it1" >out &&
	status_is 200 out &&
	test_grep "\"status\":\"duplicate\",\"version\":1" out
'

test_expect_success 'dup: sent twice, the second reply returned' '
	proxy_ctl px "set /v1/push dup 1" &&
	ppush px dev "$(item dev put notes n2 0 2 "{\"b\":2}")" >out &&
	status_is 200 out &&
	test_grep "\"status\":\"duplicate\",\"version\":1" out &&
	test_equal "changes of dev" 2 "$(pushed dev)" &&
	test_grep "dup: first reply 200 dropped" "$(proxy_log px)"
'

test_expect_success 'reset-mid: half a reply, then a reset' '
	proxy_ctl px "set /v1/info reset-mid 1" &&
	test_expect_code 3 preq px probe GET /v1/info >out &&
	test_grep "^CURL-ERROR" out &&
	test_grep "/v1/info -> reset-mid" "$(proxy_log px)"
'

test_expect_success 'trickle: the whole reply, slowly' '
	req srv probe GET "/v1/changes?since=0" >direct &&
	status_is 200 direct &&
	proxy_ctl px "set /v1/changes trickle 1" &&
	preq px probe --elapsed GET "/v1/changes?since=0" >out 2>elapsed &&
	test_cmp direct out &&
	ms=$(sed -n "s/^elapsed_ms //p" elapsed) &&
	echo "trickled in $ms ms" &&
	test "$ms" -ge 1000 &&
	test "$(proxy_stat px trickle)" = 1
'

test_expect_success 'hold: the whole reply, only once released' '
	req srv probe GET "/v1/changes?since=0" >direct &&
	status_is 200 direct &&
	proxy_ctl px "set /v1/changes hold 1" &&
	test_bg "$SRVCLIENT" --key-dir "$TEST_DIR/keys/probe" \
	    --url "$(proxy_url px)" --timeout 60 \
	    GET "/v1/changes?since=0" >held.out &&
	held=$test_bg_pid &&
	test_wait_until 30 "grep -q \"held GET /v1/changes?since=0\\\$\" \"$(proxy_log px)\"" &&
	test_pid_ours "$held" && test ! -s held.out &&
	proxy_ctl px release &&
	test_wait_exit "$held" 30 && test "$test_exit_status" = 0 &&
	test_cmp direct held.out &&
	test "$(proxy_stat px hold)" = 1
'

test_expect_success 'refuse: closed without an answer, nothing read' '
	proxy_ctl px "set /v1/push refuse 1" &&
	it3=$(item dev put notes n3 0 3 "{\"c\":3}") &&
	test_expect_code 3 ppush px dev "$it3" >out &&
	test_grep "^CURL-ERROR" out &&
	test_equal "changes of dev" 2 "$(pushed dev)" &&
	proxy_ctl px "set * refuse 1" &&
	test_expect_code 3 preq px probe GET /v1/info >out &&
	test_grep "^CURL-ERROR" out &&
	test_grep "refused at accept" "$(proxy_log px)" &&
	test "$(proxy_stat px refuse)" = 2 &&
	preq px probe GET /v1/info >out &&
	status_is 200 out
'

test_expect_success 'rules: newest first, prefixes, default, clear' '
	proxy_ctl px "set /v1/ drop-before" &&
	proxy_ctl px "set /v1/info pass" &&
	preq px probe GET /v1/info >out &&
	status_is 200 out &&
	test_expect_code 3 preq px probe GET "/v1/changes?since=0" >out &&
	test_grep "^CURL-ERROR" out &&
	proxy_ctl px clear &&
	proxy_ctl px "default drop-before" &&
	test_expect_code 3 preq px probe GET /v1/info >out &&
	test_grep "^CURL-ERROR" out &&
	proxy_ctl px clear &&
	preq px probe GET /v1/info >out &&
	status_is 200 out
'

test_expect_success 'the stats add up' '
	proxy_ctl px stats >stats &&
	cat stats &&
	tr " " "\n" <stats | awk -F= "
		\$1 == \"requests\" { n = \$2; next }
		{ sum += \$2 }
		END { exit !(n == sum && n > 0) }"
'

# chaos_actions LOG: the actions of the proxy's requests to /v1/info after
# the "chaos" command, in order.
chaos_actions() {
	sed -n "/control: chaos done/,\$ s/.*GET \/v1\/info -> //p" "$1"
}

test_expect_success 'chaos 100: every request gets a fault, as the seed says' '
	proxy_start px2 srv --seed 7 &&
	before=$(proxy_stat px passed) &&
	proxy_ctl px "chaos 100" &&
	proxy_ctl px2 "chaos 100" &&
	for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
		# Most of them fail: only what the proxies logged counts.
		preq px probe --timeout 10 GET /v1/info >/dev/null
		preq px2 probe --timeout 10 GET /v1/info >/dev/null
		true
	done &&
	test_equal "requests passed under chaos 100" "$before" \
	    "$(proxy_stat px passed)" &&
	chaos_actions "$(proxy_log px)" >a1 &&
	chaos_actions "$(proxy_log px2)" >a2 &&
	test_equal "chaos requests" 12 "$(wc -l <a1)" &&
	test_cmp a1 a2 &&
	test "$(sort -u a1 | wc -l)" -ge 3 &&
	proxy_ctl px "chaos 0" &&
	preq px probe GET /v1/info >out &&
	status_is 200 out
'

test_expect_success 'a long-poll is not trickled; cut ends it at once' '
	head=$(req srv probe GET /v1/info | json_int head) &&
	proxy_ctl px "set * trickle" &&
	test_bg "$SRVCLIENT" --key-dir "$TEST_DIR/keys/probe" \
	    --url "$(proxy_url px)" --timeout 60 \
	    GET "/v1/changes?since=$head&wait=30" >lp.out &&
	lp=$test_bg_pid &&
	test_wait_until 10 "grep -q \"wait=30 -> pass\" \"$(proxy_log px)\"" &&
	proxy_ctl px cut &&
	test_wait_exit "$lp" 10 &&
	test_grep "^CURL-ERROR" lp.out &&
	proxy_ctl px clear
'

test_expect_success 'a long-poll passes through whole' '
	head=$(req srv probe GET /v1/info | json_int head) &&
	n0=$(grep -c "wait=30 -> pass" "$(proxy_log px)") &&
	test_bg "$SRVCLIENT" --key-dir "$TEST_DIR/keys/probe" \
	    --url "$(proxy_url px)" --timeout 60 \
	    GET "/v1/changes?since=$head&wait=30" >lp.out &&
	lp=$test_bg_pid &&
	test_wait_until 10 "test \$(grep -c \"wait=30 -> pass\" \"$(proxy_log px)\") = $((n0 + 1))" &&
	push srv dev "$(item dev put notes n4 0 4 "{\"d\":4}")" >out &&
	status_is 200 out &&
	test_wait_exit "$lp" 20 &&
	status_is 200 lp.out &&
	test_grep "\"id\":\"n4\"" lp.out
'

test_expect_success 'bad commands get a clear error; the proxy goes on' '
	test_expect_code 1 proxy_ctl px bogus >err &&
	test_grep "^error: unknown command .bogus." err &&
	test_expect_code 1 proxy_ctl px "set /v1/push explode" >err &&
	test_grep "^error: unknown action .explode." err &&
	test_expect_code 1 proxy_ctl px "set /v1/push pass 0" >err &&
	test_grep "^error: COUNT .0. is not a positive integer" err &&
	test_expect_code 1 proxy_ctl px "chaos 101" >err &&
	test_grep "^error: usage: chaos PERCENT" err &&
	test_expect_code 1 proxy_ctl px "" >err &&
	test_grep "^error: empty command" err &&
	test_expect_code 3 "$FAULTPROXY" --ctl "$TEST_DIR/nowhere.sock" stats &&
	preq px probe GET /v1/info >out &&
	status_is 200 out
'

test_expect_success 'a request head over 64 KiB is refused by name' '
	big=$(head -c 70000 /dev/zero | tr "\0" x) &&
	preq px probe --header "X-Big: $big" GET /v1/info >out &&
	status_is 400 out &&
	test_grep "faultproxy: head over 64 KiB" out &&
	preq px probe GET /v1/info >out &&
	status_is 200 out
'

test_expect_success 'a body over 32 MiB is refused by name, never forwarded' '
	head -c 34000000 /dev/zero >big &&
	n0=$(grep -c "POST /v1/push" "$(server_log srv)") &&
	preq px probe POST /v1/push big >out &&
	status_is 413 out &&
	test_grep "faultproxy: body over 32 MiB" out &&
	test_equal "pushes the server saw" "$n0" \
	    "$(grep -c "POST /v1/push" "$(server_log srv)")" &&
	preq px probe GET /v1/info >out &&
	status_is 200 out
'

test_expect_success 'SIGTERM stops it cleanly' '
	proxy_stop px &&
	proxy_stop px2 &&
	test ! -e "$(proxy_sock px)"
'

test_done
