#!/bin/sh
# Guards what a generic varlink client (one written from the varlink
# specification and io.ferry.varlink alone, such as varlink/go) relies on
# (issue 9):
#  - "parameters": null, which varlink/go sends for a call without input,
#    means {} (it was refused as a malformed call);
#  - org.varlink.service errors carry exactly the fields that interface
#    declares (InvalidParameter was sent with an undeclared "reason"), and
#    org.varlink.service methods answer only org.varlink.service errors
#    (GetInfo with an unknown parameter answered io.ferry.InvalidArgument);
#  - parameters that do not type-check against the interface (wrong JSON
#    type, unknown, missing, not one of an enum's values) are
#    InvalidParameter{parameter}, for every method, while values that are
#    well-typed but refused (a bad name, a negative if_rev) stay
#    io.ferry.InvalidArgument{field,reason};
#  - a number beyond what JSON numbers hold here (1e400, 2^63) in a body is
#    InvalidArgument on "body" (it was refused as an unparseable message),
#    nothing is written and the connection goes on (and 1e400 for if_rev
#    is no integer: InvalidParameter);
#  - a Put or a Patch that leaves the body as it is changes nothing: no new
#    rev, no Watch event (docs/ipc.md says so).

. "$(dirname "$0")/test-lib.sh"

sock=

# invalid_parameter OUT NAME: OUT is exactly InvalidParameter{parameter:NAME}.
invalid_parameter() {
	test_grep "^{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"$2\"}}\$" "$1"
}

# invalid_argument OUT FIELD: OUT is io.ferry.InvalidArgument on FIELD.
invalid_argument() {
	test_grep "^{\"error\":\"io.ferry.InvalidArgument\",\"parameters\":{\"field\":\"$2\",\"reason\":\"[^\"]" "$1"
}

test_expect_success 'start ferryd' '
	ferryd_start A &&
	sock=$(ferryd_sock A)
'

test_expect_success '"parameters": null is an empty parameters object' '
	vlcall A "{\"method\":\"org.varlink.service.GetInfo\",\"parameters\":null}" >out &&
	test_grep "^{\"parameters\":{\"vendor\":" out &&
	vlcall A "{\"method\":\"io.ferry.Status\",\"parameters\":null}" >out &&
	test_grep "^{\"parameters\":{\"status\":{" out &&
	vlcall A "{\"method\":\"io.ferry.Conflicts\",\"parameters\":null}" >out &&
	test_grep "^{\"parameters\":{\"conflicts\":\[\]}}\$" out &&
	vlcall A "{\"method\":\"io.ferry.Get\",\"parameters\":null}" >out &&
	invalid_parameter out collection
'

test_expect_success 'org.varlink.service methods answer only their own errors' '
	fcall A org.varlink.service.GetInfo "{\"x\":1}" >out &&
	invalid_parameter out x &&
	fcall A org.varlink.service.GetInterfaceDescription >out &&
	invalid_parameter out interface &&
	fcall A org.varlink.service.GetInterfaceDescription "{\"interface\":7}" >out &&
	invalid_parameter out interface &&
	fcall A org.varlink.service.GetInterfaceDescription "{\"interface\":\"io.nope\"}" >out &&
	test_grep "^{\"error\":\"org.varlink.service.InterfaceNotFound\",\"parameters\":{\"interface\":\"io.nope\"}}\$" out &&
	fcall A org.varlink.service.Nope >out &&
	test_grep "^{\"error\":\"org.varlink.service.MethodNotFound\",\"parameters\":{\"method\":\"org.varlink.service.Nope\"}}\$" out
'

test_expect_success 'service calls behind a write are answered in order' '
	printf "%s\0" \
	    "{\"method\":\"io.ferry.Put\",\"parameters\":{\"collection\":\"o\",\"id\":\"x\",\"body\":{\"n\":1}}}" \
	    "{\"method\":\"org.varlink.service.GetInfo\"}" \
	    "{\"method\":\"io.ferry.Get\",\"parameters\":{\"collection\":\"o\",\"id\":\"x\"}}" \
	    "{\"method\":\"io.ferry.Nope\"}" \
	    "{\"method\":\"io.ferry.Put\",\"parameters\":{\"collection\":\"o\",\"id\":\"x\",\"body\":{\"n\":2}}}" \
	    "{\"method\":\"org.varlink.service.GetInterfaceDescription\",\"parameters\":{\"interface\":\"no.pe\"}}" \
	    "{\"method\":\"io.ferry.Get\",\"parameters\":{\"collection\":\"o\",\"id\":\"x\"}}" |
	    "$VLSEND" "$sock" -n 7 >out &&
	sed -n 1p out | grep -q "^{\"parameters\":{\"doc\":{.*\"rev\":1," &&
	sed -n 2p out | grep -q "^{\"parameters\":{\"vendor\":" &&
	sed -n 3p out | grep -q "\"body\":{\"n\":1}}}}\$" &&
	sed -n 4p out | grep -q "^{\"error\":\"org.varlink.service.MethodNotFound\"" &&
	sed -n 5p out | grep -q "\"rev\":2," &&
	sed -n 6p out | grep -q "^{\"error\":\"org.varlink.service.InterfaceNotFound\"" &&
	sed -n 7p out | grep -q "\"body\":{\"n\":2}}}}\$" || {
		cat out; return 1; }
'

test_expect_success 'a malformed message is InvalidParameter with no undeclared field' '
	printf "{\0" | "$VLSEND" "$sock" -n 1 >out &&
	invalid_parameter out message &&
	printf "{\"method\":\"io.ferry.Get\",\"parameters\":[]}\0" |
	    "$VLSEND" "$sock" -n 1 >out &&
	invalid_parameter out parameters &&
	printf "{\"method\":\"io.ferry.Status\",\"more\":1}\0" |
	    "$VLSEND" "$sock" -n 1 >out &&
	invalid_parameter out more
'

# METHOD PARAMS PARAMETER: a call whose PARAMETER does not type-check.
cat >illtyped <<'EOF'
Get {"collection":1,"id":"x"} collection
Get {"collection":"c"} id
Get {"collection":"c","id":"x","extra":true} extra
Put {"collection":"c","id":"x","body":[]} body
Put {"collection":"c","id":"x","body":null} body
Put {"collection":"c","id":"x"} body
Put {"collection":"c","id":"x","body":{},"if_rev":1.5} if_rev
Patch {"collection":"c","id":"x","patch":"x"} patch
Delete {"collection":"c","id":"x","if_rev":"1"} if_rev
List {"collection":"c","limit":1.5} limit
List {"collection":"c","after":5} after
Watch {"collections":"a"} collections
Watch {"collections":[1]} collections
Watch {"since":true} since
Status {"x":1} x
Sync {"wait":"yes"} wait
Conflicts {"all":true} all
Parked {"x":null} x
GetConflict {"conflict_id":"1"} conflict_id
GetConflict {} conflict_id
Resolve {"conflict_id":1,"strategy":"bogus"} strategy
Resolve {"conflict_id":1,"strategy":1} strategy
Resolve {"conflict_id":1,"strategy":"merged","body":[]} body
History {"collection":"c","id":"x","after":"x"} after
EOF

test_expect_success 'ill-typed parameters are InvalidParameter, for every method' '
	while read -r m p want; do
		printf "{\"method\":\"io.ferry.%s\",\"parameters\":%s,\"more\":true}\0" \
		    "$m" "$p" | "$VLSEND" "$sock" -n 1 >out &&
		invalid_parameter out "$want" || {
			echo "for $m $p"; return 1; }
	done <illtyped &&
	get_nf=$(fcall A Get "{\"collection\":\"c\",\"id\":\"x\"}") &&
	test_equal "nothing written" io.ferry.NotFound \
	    "$(echo "$get_nf" | json_str error)"
'

test_expect_success 'well-typed values that are refused stay InvalidArgument' '
	fcall A Put "{\"collection\":\"a/b\",\"id\":\"x\",\"body\":{}}" >out &&
	invalid_argument out collection &&
	fcall A Put "{\"collection\":\"c\",\"id\":\"x\",\"body\":{},\"if_rev\":-1}" >out &&
	invalid_argument out if_rev &&
	fcall A List "{\"collection\":\"c\",\"limit\":0}" >out &&
	invalid_argument out limit &&
	fcall A Resolve "{\"conflict_id\":1,\"strategy\":\"merged\"}" >out &&
	invalid_argument out body
'

test_expect_success 'a number beyond JSON range in a body is InvalidArgument on body' '
	for n in 1e400 -1e400 123456789012345678901234567890 9223372036854775808; do
		printf "{\"method\":\"io.ferry.Put\",\"parameters\":{\"collection\":\"big\",\"id\":\"n\",\"body\":{\"a\":[1,{\"n\":%s}]}}}\0{\"method\":\"io.ferry.Get\",\"parameters\":{\"collection\":\"big\",\"id\":\"n\"}}\0" \
		    "$n" | "$VLSEND" "$sock" -n 2 >out &&
		sed -n 1p out >first &&
		invalid_argument first body &&
		test_grep "out of the range" first &&
		sed -n 2p out | grep -q "^{\"error\":\"io.ferry.NotFound\"" || {
			echo "for $n:"; cat out; return 1; }
	done &&
	fcall A Put "{\"collection\":\"big\",\"id\":\"p\",\"body\":{\"n\":1}}" >out &&
	test_equal rev 1 "$(json_int rev out)" &&
	fcall A Patch "{\"collection\":\"big\",\"id\":\"p\",\"patch\":{\"n\":1e999}}" >out &&
	invalid_argument out patch &&
	fcall A Put "{\"collection\":\"big\",\"id\":\"p\",\"body\":{},\"if_rev\":9223372036854775808}" >out &&
	invalid_argument out if_rev &&
	fcall A Put "{\"collection\":\"big\",\"id\":\"p\",\"body\":{},\"if_rev\":1e400}" >out &&
	invalid_parameter out if_rev &&
	fcall A Get "{\"collection\":\"big\",\"id\":\"p\"}" >out &&
	test_grep "\"rev\":1,.*\"body\":{\"n\":1}}}}\$" out &&
	fcall A org.varlink.service.GetInterfaceDescription "{\"interface\":1e999}" >out &&
	invalid_parameter out interface &&
	ferryd_works A
'

test_expect_success 'a Put or Patch that leaves the body as it is: no rev, no event' '
	fcall A Put "{\"collection\":\"same\",\"id\":\"s\",\"body\":{\"a\":1,\"b\":[1,2]}}" >out &&
	test_equal rev 1 "$(json_int rev out)" &&
	printf "%s\0" "{\"method\":\"io.ferry.Watch\",\"parameters\":{\"collections\":[\"same\"]},\"more\":true}" \
	    >watch.call &&
	test_bg "$VLSEND" "$sock" -n 2 --timeout 30000 <watch.call >w.out 2>&1 &&
	wpid=$test_bg_pid &&
	test_wait_until 10 "grep -q \"\\\"ready\\\":true\" w.out" &&
	fcall A Put "{\"collection\":\"same\",\"id\":\"s\",\"body\":{\"a\":1,\"b\":[1,2]}}" >out &&
	test_equal "rev after the same Put" 1 "$(json_int rev out)" &&
	fcall A Patch "{\"collection\":\"same\",\"id\":\"s\",\"patch\":{\"a\":1}}" >out &&
	test_equal "rev after a Patch that changes nothing" 1 "$(json_int rev out)" &&
	test_grep "\"body\":{\"a\":1,\"b\":\[1,2\]}" out &&
	fcall A Patch "{\"collection\":\"same\",\"id\":\"s\",\"patch\":{\"c\":null}}" >out &&
	test_equal "rev after removing what is not there" 1 "$(json_int rev out)" &&
	fcall A Put "{\"collection\":\"same\",\"id\":\"t\",\"body\":{\"x\":1}}" >out &&
	test_wait_exit "$wpid" 30 &&
	test "$(tail -n 1 w.out)" = DONE &&
	sed -n 2p w.out >ev &&
	test_grep "\"id\":\"t\"" ev &&
	fcall A Get "{\"collection\":\"same\",\"id\":\"s\"}" >out &&
	test_equal "rev at the end" 1 "$(json_int rev out)"
'

test_expect_success 'stop cleanly' '
	ferryd_stop A
'

test_done
