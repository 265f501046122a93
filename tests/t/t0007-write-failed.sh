#!/bin/sh
# Guards the write path when the disk refuses writes: every call of a
# failed batch is answered io.ferry.WriteFailed with a reason and did not
# happen, nothing acknowledged before is lost, ferryd keeps serving reads,
# and writes work again once space is back, without a restart.
#
# "Disk full" is a soft RLIMIT_FSIZE of 1 MiB with SIGXFSZ ignored: SQLite
# then gets EFBIG from write(2) once the WAL reaches the limit.

. "$(dirname "$0")/test-lib.sh"

[ -x "$DURAWRITER" ] || skip_all "durawriter is not built"
command -v prlimit >/dev/null 2>&1 && test_set_prereq PRLIMIT
"$DURAWRITER" --integrity /dev/null >/dev/null 2>&1
[ $? != 77 ] && test_set_prereq INTEGRITY

sock=$(ferryd_sock A)

test_expect_success 'start ferryd with a 1 MiB file size limit' '
	cat >limited-ferryd <<-EOF &&
	#!/bin/sh
	ulimit -S -f 2048
	trap "" XFSZ
	exec "$FERRYD" "\$@"
	EOF
	chmod +x limited-ferryd &&
	real=$FERRYD &&
	FERRYD=$TEST_DIR/limited-ferryd &&
	ferryd_start A;
	st=$? &&
	FERRYD=$real &&
	test $st = 0 &&
	grep "^Max file size" "/proc/$(ferryd_pid A)/limits" >limits &&
	test_grep "1048576" limits
'

test_expect_success 'writes past the limit are refused with WriteFailed' '
	"$DURAWRITER" "$sock" --prefix full --log full.log --count 1000 \
	    --size 2000 >writer.out 2>writer.err &&
	cat writer.out &&
	acked=$(sed -n "s/^wrote //p" writer.out) &&
	test "$acked" -gt 0 &&
	test "$acked" -lt 1000 &&
	test_grep "io.ferry.WriteFailed" writer.err &&
	test "$(grep -c "^!" full.log)" = $((1000 - acked)) &&
	test_grep "cannot commit to the replica\|cannot write to the replica" \
	    "$(ferryd_log A)"
'

test_expect_success 'a WriteFailed reply says why' '
	fcall A Put "{\"collection\":\"c\",\"id\":\"one\",\"body\":{\"pad\":\"$(printf "%02000d" 0)\"}}" >out &&
	test_grep "^{\"error\":\"io.ferry.WriteFailed\"" out &&
	test_grep "\"reason\":\"[^\"]" out &&
	fcall A Get "{\"collection\":\"c\",\"id\":\"one\"}" >out &&
	test_grep "^{\"error\":\"io.ferry.NotFound\"" out
'

test_expect_success 'refused writes did not happen; acknowledged ones did' '
	"$DURAWRITER" "$sock" --verify full.log >verify.out;
	cat verify.out &&
	test_grep "^verified $acked acknowledged, $((1000 - acked)) refused" verify.out &&
	fcall A Status >status &&
	test "$(json_int docs status)" = "$acked" &&
	test "$(json_int seq status)" = "$acked" &&
	ferryd_works A
'

test_expect_success PRLIMIT 'with space back, writes work again without a restart' '
	prlimit --pid "$(ferryd_pid A)" --fsize=unlimited &&
	"$DURAWRITER" "$sock" --prefix again --log again.log --count 500 \
	    --size 2000 >writer.out 2>writer.err &&
	test_grep "^wrote 500$" writer.out &&
	"$DURAWRITER" "$sock" --verify full.log again.log >verify.out;
	cat verify.out &&
	test_grep "^verified $((acked + 500)) acknowledged" verify.out
'

test_expect_success 'after a restart everything acknowledged is there' '
	ferryd_stop A &&
	ferryd_start A &&
	logs=full.log &&
	if test_have_prereq PRLIMIT; then logs="$logs again.log"; fi &&
	"$DURAWRITER" "$sock" --verify $logs >verify.out;
	cat verify.out &&
	test_grep "^verified " verify.out &&
	fcall A Status >status &&
	test "$(json_int docs status)" = "$(json_int seq status)"
'

test_expect_success INTEGRITY 'the replica passes PRAGMA integrity_check' '
	ferryd_stop A &&
	"$DURAWRITER" --integrity "$(ferryd_datadir A)/replica.db" >out;
	cat out &&
	test_grep "^integrity ok$" out
'

test_done
