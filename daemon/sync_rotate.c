/*
 * sync_rotate: `ferryctl key rotate` in the sync engine (docs/protocol.md
 * "Rotating a key"; sync.h sync_rotate).
 *
 * A rotation goes through these stages, one at a time:
 *   WAIT     no new record is made (push_prepare holds) and no pull
 *            starts; the push in flight is answered (a batch made and
 *            not sent yet waits for the new key: from PREPARE on nothing
 *            is sent with the old key but the statement);
 *   PREPARE  a writer op makes device.key.next (or loads it, when a
 *            rotation was pending at start) and reads the device seq: every
 *            record the old key signed has a seq up to it;
 *   SEND     the statement (lib/rotation), signed by both keys, is POSTed
 *            to /v1/keys/rotate with the old key's request signature;
 *            a transport failure, 408, 429 or 5xx retries after a backoff
 *            (RETRY), the call being answered Offline meanwhile;
 *   COMMIT   taken (200, also for a retry of a rotation the server took
 *            before a lost reply): a writer op renames device.key.next
 *            over device.key;
 *   SWAP     once no pulled page is being applied (the writer thread
 *            reads the key to know the device's own changes), the new key
 *            replaces the old one in memory, on the loop: from then on
 *            records are signed and requests made with it.
 * A definitive refusal (400, 401, 403, 409) removes device.key.next
 * (DISCARD) and the old key goes on as before.  Then push and pull
 * resume.
 *
 * Records made before the rotation keep their bytes and the old key's
 * signature (one may have been applied with its reply lost): the server
 * takes them up to the statement's seq from the new key (duplicate or
 * applied).  Intents not yet made into records are signed with the new
 * key when they are.  The seq counter goes on: the new key's first record
 * has the next seq.
 *
 * Crash safety: device.key.next exists from PREPARE until COMMIT or
 * DISCARD, and says a rotation is pending; at start the engine resumes it
 * (sync_rotate_setup) before any request is made.  A kill -9 anywhere
 * leaves device.key (the old key, or the new one once renamed) and maybe
 * device.key.next: resending the statement is harmless (the server
 * answers a retry as the first), and the rename is atomic.
 *
 * The keys rotated from outlive the process: a record one of them signed
 * may come back in a pull after a restart, or after more rotations (its
 * push's reply lost), and must be settled as this device's own, not
 * merged with itself.  The replica keeps the last SYNC_ROT_PREV_MAX of
 * them (sync_int.h), newest first, as meta "keys_prev" (keys separated
 * by one space) and the newest alone as "key_prev" (what a ferryd from
 * before the list read).  PREPARE's op puts the key in use (the one being
 * rotated from) first in the stored list, the oldest dropping out,
 * before the statement is sent, so whichever file a kill -9 leaves as
 * device.key, the list holds every key before it (and maybe the key
 * itself, which counts as none); DISCARD's op takes the key in use out
 * again.  At start (sync_rotate_prev_load, with the pull cursor) the
 * stored list is the keys rotated from, but the device key.  A replica
 * with only "key_prev" (from before the list) has that one key; a
 * "key_prev" missing from the list (an older ferryd rotated since) goes
 * first; a replica from before either has none.
 */
#include "autoconfig.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rotation.h"
#include "sync_int.h"
#include "util.h"
#include "vl_server.h"

#define ROTATE_TIMEOUT_MS	30000L

/* A writer op of the rotation: what it found or did. */
struct rot_op {
	struct sync	*sy;
	struct keys	*next;		/* PREPARE: loaded or made */
	int64_t		 seq;		/* PREPARE: the device seq */
	/* The key in use: PREPARE puts it first in the stored keys rotated
	 * from, DISCARD takes it out again. */
	char		 key[KEYS_PUB_B64_LEN + 1];
	struct sync_keys_prev prev;	/* PREPARE: the keys rotated from
					 * once this rotation is done */
	char		 why[256];
};

static void	rot_poll(struct sync *sy);

static const char *
rot_stage_name(enum rot_stage st)
{
	switch (st) {
	case ROT_NONE:		return "none";
	case ROT_WAIT:		return "waiting for the push in flight";
	case ROT_PREPARE:	return "making the new key";
	case ROT_SEND:		return "telling the remote";
	case ROT_RETRY:		return "waiting to tell the remote again";
	case ROT_COMMIT:	return "installing the new key";
	case ROT_SWAP:		return "installing the new key";
	case ROT_DISCARD:	return "dropping the new key";
	}
	return "?";
}

static void
rot_stage_set(struct sync *sy, enum rot_stage st)
{
	if (sy->rot_stage != st)
		log_debug("sync: key rotation: %s", rot_stage_name(st));
	sy->rot_stage = st;
}

/* Answer the RotateKey call, if one waits. */
static void
rot_answer(struct sync *sy, const char *error, const char *reason)
{
	json_t *p;

	if (sy->rot_call == NULL)
		return;
	if (error == NULL)
		p = json_pack("{s:s,s:s}", "key", sy->keys->pub_b64,
		    "old_key", sy->rot_prev.key[0]);
	else
		p = json_pack("{s:s}", "reason", reason);
	if (error == NULL)
		vl_reply(sy->rot_call, p, false);
	else
		vl_error(sy->rot_call, error, p);
	json_decref(p);
	sy->rot_call = NULL;
}

/* The rotation is over (done or refused): push and pull again. */
static void
rot_finish(struct sync *sy)
{
	keys_free(sy->rot_next);
	sy->rot_next = NULL;
	rot_stage_set(sy, ROT_NONE);
	backoff_reset(&sy->rot_backoff);
	if (sy->state == SYNC_STOPPING)
		return;
	if (sy->state == SYNC_PAUSED && sy->cursor_known)
		sync_set_state(sy, SYNC_IDLE, "key rotation over");
	sy->push_need = true;
	sync_push_start(sy);
	if (sy->pull_req == NULL)
		sync_pull_start(sy, 0);
	sync_notify(sy);
	sync_update(sy, "key rotation over");
}

/* --- the keys rotated from --- */

/* Whether s is a public key as the replica writes one. */
static bool
rot_is_key(const char *s, size_t len)
{
	unsigned char bin[crypto_sign_PUBLICKEYBYTES];
	char buf[KEYS_PUB_B64_LEN + 1];

	if (len != KEYS_PUB_B64_LEN)
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return keys_b64_decode(buf, bin, sizeof bin) == 0;
}

/* Where key (len bytes) is in p, or -1. */
static int
rot_prev_find(const struct sync_keys_prev *p, const char *key, size_t len)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (len == strlen(p->key[i]) &&
		    memcmp(p->key[i], key, len) == 0)
			return (int)i;
	return -1;
}

/* Take key out of p, if it is there. */
static void
rot_prev_drop(struct sync_keys_prev *p, const char *key)
{
	int i;

	if ((i = rot_prev_find(p, key, strlen(key))) < 0)
		return;
	memmove(p->key + i, p->key + i + 1,
	    (p->n - (size_t)i - 1) * sizeof p->key[0]);
	p->n--;
}

/* Put key (a key) first in p, the oldest dropping out when p is full. */
static void
rot_prev_push(struct sync_keys_prev *p, const char *key)
{
	rot_prev_drop(p, key);
	if (p->n == SYNC_ROT_PREV_MAX)
		p->n--;
	memmove(p->key + 1, p->key, p->n * sizeof p->key[0]);
	memcpy(p->key[0], key, sizeof p->key[0]);
	p->n++;
}

/* Writer thread: store p as meta "keys_prev" and "key_prev" (the newest,
 * "" for none).  0 or -errno. */
static int
rot_prev_store(struct store *st, const struct sync_keys_prev *p)
{
	char text[SYNC_ROT_PREV_MAX * (KEYS_PUB_B64_LEN + 1)];
	size_t i, len = 0;
	int r;

	text[0] = '\0';
	for (i = 0; i < p->n; i++)
		len += (size_t)snprintf(text + len, sizeof text - len, "%s%s",
		    i > 0 ? " " : "", p->key[i]);
	if ((r = store_meta_set(st, "keys_prev", text)) < 0)
		return r;
	return store_meta_set(st, "key_prev", p->n > 0 ? p->key[0] : "");
}

/* --- writer ops --- */

/*
 * Writer thread: the key in use goes first in the stored keys rotated
 * from (in), or out of them; o->prev gets the list stored.  A value that
 * is not a key was named at start, and is left out now.  0, or -errno
 * with op failed saying why.
 */
static int
rot_prev_update(struct writer_batch *b, struct writer_op *op,
    struct rot_op *o, bool in)
{
	const char *bad;
	int r;

	if ((r = sync_rotate_prev_load(b->st, &o->prev, &bad)) == 0) {
		if (in)
			rot_prev_push(&o->prev, o->key);
		else
			rot_prev_drop(&o->prev, o->key);
		r = rot_prev_store(b->st, &o->prev);
	}
	if (r < 0) {
		snprintf(o->why, sizeof o->why, "cannot store the keys rotated "
		    "from: %s", store_errmsg(b->st));
		writer_op_fail(op, r, o->why);
	}
	return r;
}

static void
rot_prepare_run(struct writer_batch *b, struct writer_op *op)
{
	struct rot_op *o = op->arg;
	char *v = NULL;
	int r;

	if (o->next == NULL && (r = keys_next(o->sy->rot_dir, true,
	    &o->next)) < 0) {
		snprintf(o->why, sizeof o->why, "cannot write %s/device.key."
		    "next: %s", o->sy->rot_dir, strerror(-r));
		writer_op_fail(op, r, o->why);
		return;
	}
	if ((r = store_meta_get(b->st, "device_seq", &v)) == 0) {
		o->seq = strtoll(v, NULL, 10);
		free(v);
	} else if (r != -ENOENT) {
		snprintf(o->why, sizeof o->why, "cannot read the device seq: "
		    "%s", store_errmsg(b->st));
		writer_op_fail(op, r, o->why);
		return;
	}
	/* Committed with this op, before the statement is sent. */
	(void)rot_prev_update(b, op, o, true);
}

static void	rot_send(struct sync *sy);

static void
rot_prepare_done(struct writer_op *op, int err, void *arg)
{
	struct rot_op *o = arg;
	struct sync *sy = o->sy;

	if (sy->state == SYNC_STOPPING) {
		keys_free(o->next);
		free(o);
		return;
	}
	if (err != 0) {
		log_err("sync: key rotation: %s", o->why);
		rot_answer(sy, "io.ferry.RotationRefused", o->why);
		keys_free(o->next);
		free(o);
		rot_finish(sy);
		return;
	}
	if (sy->rot_next == NULL)
		log_notice("sync: rotating the device key %s to %s",
		    sy->keys->pub_b64, o->next->pub_b64);
	keys_free(sy->rot_next);
	sy->rot_next = o->next;
	sy->rot_seq = o->seq;
	sy->rot_prev_next = o->prev;
	free(o);
	rot_send(sy);
}

/* COMMIT: device.key.next becomes device.key; DISCARD: it goes. */
static void
rot_file_run(struct writer_batch *b, struct writer_op *op)
{
	struct rot_op *o = op->arg;
	struct sync *sy = o->sy;
	int r;

	/* Dropped: the key in use is no key rotated from.  (A crash before
	 * this op commits leaves it in the list, where it counts as none.) */
	if (sy->rot_stage == ROT_DISCARD &&
	    rot_prev_update(b, op, o, false) < 0)
		return;
	r = sy->rot_stage == ROT_COMMIT ? keys_next_commit(sy->rot_dir) :
	    keys_next_discard(sy->rot_dir);
	if (r < 0) {
		snprintf(o->why, sizeof o->why, "cannot %s %s/device.key.next: "
		    "%s", sy->rot_stage == ROT_COMMIT ? "install" : "remove",
		    sy->rot_dir, strerror(-r));
		writer_op_fail(op, r, o->why);
	}
}

static void
rot_file_done(struct writer_op *op, int err, void *arg)
{
	struct rot_op *o = arg;
	struct sync *sy = o->sy;

	if (sy->state == SYNC_STOPPING) {
		free(o);
		return;
	}
	if (err != 0) {
		/* The remote took it, or refused it, but the file did not
		 * move: the next start finds it pending and goes on. */
		log_err("sync: key rotation: %s", o->why);
		if (sy->rot_stage == ROT_COMMIT)
			rot_answer(sy, "io.ferry.WriteFailed", o->why);
		free(o);
		if (sy->rot_stage == ROT_COMMIT) {
			/* Signing with the old key would be refused: stop
			 * until the file can be moved (restart). */
			sync_error(sy, "key rotation: %s", o->why);
			sync_pause(sy);
			return;
		}
		rot_finish(sy);
		return;
	}
	free(o);
	if (sy->rot_stage == ROT_DISCARD) {
		rot_finish(sy);
		return;
	}
	rot_stage_set(sy, ROT_SWAP);
	rot_poll(sy);
}

static int
rot_file(struct sync *sy, enum rot_stage st)
{
	struct rot_op *o;

	rot_stage_set(sy, st);
	if ((o = calloc(1, sizeof *o)) == NULL)
		return -ENOMEM;
	o->sy = sy;
	memcpy(o->key, sy->keys->pub_b64, sizeof o->key);
	if (sync_writer_add(sy, rot_file_run, rot_file_done, o) < 0) {
		free(o);
		return -ENOMEM;
	}
	return 0;
}

/* --- the statement --- */

static void
rot_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sync *sy = arg;

	(void)fd;
	(void)what;
	if (sy->rot_stage == ROT_RETRY)
		rot_send(sy);
}

static void
rot_retry(struct sync *sy)
{
	struct timeval tv;
	int64_t ms;

	rot_stage_set(sy, ROT_RETRY);
	ms = backoff_next(&sy->rot_backoff);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(sy->rot_ev, &tv);
	rot_answer(sy, "io.ferry.Offline", sy->last_error);
	sync_notify(sy);
}

static void
rot_answered(const struct http_result *res, void *arg)
{
	struct sync *sy = arg;
	int k;

	sy->rot_req = NULL;
	k = sync_classify(sy, res, "key rotation");
	if (k == 0) {
		rot_retry(sy);
		return;
	}
	if (k < 0) {
		log_err("sync: key rotation refused: %s", sy->last_error);
		rot_answer(sy, "io.ferry.RotationRefused", sy->last_error);
		if (rot_file(sy, ROT_DISCARD) < 0)
			rot_finish(sy);
		return;
	}
	sync_ok(sy);
	if (rot_file(sy, ROT_COMMIT) < 0) {
		/* Pending on disk: the next start completes it. */
		sync_error(sy, "key rotation: out of memory");
		rot_answer(sy, "io.ferry.WriteFailed", "out of memory");
		sync_pause(sy);
	}
}

static void
rot_send(struct sync *sy)
{
	char *text = NULL, *so = NULL, *sn = NULL, *body = NULL;
	size_t len;
	json_t *o;
	int r;

	rot_stage_set(sy, ROT_SEND);
	r = rotation_make(sy->keys, sy->rot_next, sy->rot_seq, util_now_ms(),
	    &text, &len, &so, &sn);
	if (r == 0) {
		o = json_pack("{s:s%,s:s,s:s}", "statement", text, len,
		    "sig_old", so, "sig_new", sn);
		body = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		r = body != NULL ? 0 : -ENOMEM;
	}
	if (r == 0)
		r = sync_send(sy, "POST", "/v1/keys/rotate", body,
		    strlen(body), ROTATE_TIMEOUT_MS, CONNECT_TIMEOUT_MS,
		    rot_answered, sy, &sy->rot_req);
	free(text);
	free(so);
	free(sn);
	free(body);
	if (r < 0) {
		sync_error(sy, "key rotation: cannot start a request: %s",
		    strerror(-r));
		rot_retry(sy);
	}
}

/* --- driving it --- */

/* Move the rotation on when what it waits for has happened. */
static void
rot_poll(struct sync *sy)
{
	struct rot_op *o;

	if (sy->state == SYNC_STOPPING)
		return;
	/* A batch made and not sent yet may stay: it is sent once the new
	 * key is in use (the statement's seq covers its records). */
	if (sy->rot_stage == ROT_WAIT && sy->push_inflight == NULL &&
	    sy->push_stage != PUSH_PREPARING && sy->push_applying == 0) {
		if ((o = calloc(1, sizeof *o)) == NULL)
			return;
		o->sy = sy;
		o->next = sy->rot_next;		/* pending from start */
		sy->rot_next = NULL;
		memcpy(o->key, sy->keys->pub_b64, sizeof o->key);
		if (sync_writer_add(sy, rot_prepare_run, rot_prepare_done,
		    o) < 0) {
			sy->rot_next = o->next;
			free(o);
			return;
		}
		rot_stage_set(sy, ROT_PREPARE);
		return;
	}
	if (sy->rot_stage == ROT_SWAP && sy->pull_applying == 0) {
		/* Nothing on the writer thread reads the keys now (no
		 * record is made, no page applied): swap them here, with
		 * the keys rotated from as PREPARE stored them. */
		sy->rot_prev = sy->rot_prev_next;
		memcpy(sy->rot_keys, sy->rot_next, sizeof *sy->rot_keys);
		log_notice("sync: the device key is now %s (%s retired)",
		    sy->keys->pub_b64, sy->rot_prev.key[0]);
		rot_answer(sy, NULL, NULL);
		rot_finish(sy);
	}
}

void
sync_rotate_poll(struct sync *sy)
{
	if (sy->rot_stage != ROT_NONE)
		rot_poll(sy);
}

bool
sync_rotate_holds(const struct sync *sy)
{
	return sy->rot_stage != ROT_NONE;
}

bool
sync_rotate_holds_requests(const struct sync *sy)
{
	return sy->rot_stage != ROT_NONE && sy->rot_stage != ROT_WAIT;
}

bool
sync_rotate_is_prev(const struct sync *sy, const char *key, size_t len)
{
	return rot_prev_find(&sy->rot_prev, key, len) >= 0;
}

int
sync_rotate_prev_load(struct store *st, struct sync_keys_prev *ret,
    const char **ret_bad)
{
	struct sync_keys_prev p;
	const char *bad = NULL;
	char *v = NULL, *k;
	size_t len = 0;
	int r;

	memset(&p, 0, sizeof p);
	if ((r = store_meta_get(st, "keys_prev", &v)) < 0 && r != -ENOENT)
		return r;
	/* Newest first: past the bound, the oldest are dropped. */
	for (k = v; r == 0 && *k != '\0'; k += len + (k[len] == ' ')) {
		len = strcspn(k, " ");
		if (!rot_is_key(k, len))
			bad = "keys_prev";
		else if (p.n < SYNC_ROT_PREV_MAX &&
		    rot_prev_find(&p, k, len) < 0) {
			memcpy(p.key[p.n], k, len);
			p.key[p.n][len] = '\0';
			p.n++;
		}
	}
	free(v);
	v = NULL;
	/* The newest, alone in a replica from before the list. */
	if ((r = store_meta_get(st, "key_prev", &v)) < 0 && r != -ENOENT)
		return r;
	if (r == 0 && v[0] != '\0') {
		if (!rot_is_key(v, strlen(v)))
			bad = "key_prev";
		else if (p.n == 0 || strcmp(p.key[0], v) != 0)
			rot_prev_push(&p, v);
	}
	free(v);
	*ret = p;
	*ret_bad = bad;
	return 0;
}

void
sync_rotate_prev_take(struct sync *sy, const struct sync_keys_prev *prev)
{
	size_t i;

	/* A rotation completed since start knows better (its PREPARE read
	 * the stored keys). */
	if (sy->rot_prev.n > 0)
		return;
	sy->rot_prev = *prev;
	/* The key in use is not one rotated from (a rotation that did not
	 * complete). */
	rot_prev_drop(&sy->rot_prev, sy->keys->pub_b64);
	for (i = 0; i < sy->rot_prev.n; i++)
		log_info("sync: the device key %s was rotated from %s: "
		    "changes that key signed are this device's own",
		    sy->keys->pub_b64, sy->rot_prev.key[i]);
}

int
sync_rotate_setup(struct sync *sy, struct keys *keys, const char *data_dir)
{
	struct keys *next = NULL;
	int r;

	if (keys != sy->keys)
		return -EINVAL;
	if ((sy->rot_dir = strdup(data_dir)) == NULL)
		return -ENOMEM;
	sy->rot_keys = keys;
	if ((sy->rot_ev = evtimer_new(sy->base, rot_retry_cb, sy)) == NULL)
		return -ENOMEM;
	r = keys_next(data_dir, false, &next);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	log_notice("sync: a rotation of the device key %s to %s is pending: "
	    "completing it", keys->pub_b64, next->pub_b64);
	sy->rot_next = next;
	rot_stage_set(sy, ROT_WAIT);
	rot_poll(sy);
	return 0;
}

void
sync_rotate(struct sync *sy, struct vl_call *call)
{
	json_t *p;

	if (sy->rot_dir == NULL || sy->rot_call != NULL ||
	    sy->rot_stage == ROT_SEND || sy->rot_stage == ROT_COMMIT ||
	    sy->rot_stage == ROT_SWAP || sy->rot_stage == ROT_DISCARD) {
		p = json_pack("{s:s}", "reason", sy->rot_dir == NULL ?
		    "key rotation is not set up" : "a key rotation is under "
		    "way; see ferryctl status");
		vl_error(call, "io.ferry.RotationRefused", p);
		json_decref(p);
		return;
	}
	sy->rot_call = call;
	if (sy->rot_stage == ROT_RETRY) {
		/* Pending: try now rather than at the backoff's end. */
		evtimer_del(sy->rot_ev);
		rot_send(sy);
		return;
	}
	if (sy->rot_stage == ROT_NONE) {
		rot_stage_set(sy, ROT_WAIT);
		rot_poll(sy);
	}
	sync_update(sy, "key rotation");
}

const char *
sync_rotation_state(const struct sync *sy)
{
	return sy->rot_stage == ROT_NONE ? NULL : rot_stage_name(sy->rot_stage);
}

/* Shutdown: the rotation stays pending on disk if it started. */
void
sync_rotate_stop(struct sync *sy)
{
	if (sy->rot_ev != NULL)
		evtimer_del(sy->rot_ev);
	rot_answer(sy, "io.ferry.Offline", "ferryd is stopping; the rotation "
	    "completes at the next start if it had begun");
}

void
sync_rotate_free(struct sync *sy)
{
	if (sy->rot_ev != NULL)
		event_free(sy->rot_ev);
	keys_free(sy->rot_next);
	free(sy->rot_dir);
}
