/*
 * ferry-notes: a small GTK 4 notes app on libferry, the example of how a
 * desktop app uses ferry.
 *
 *   ferry-notes [--socket PATH] [--title TEXT] [--name NAME]
 *
 * Notes are documents {title, text} of the collection "notes".  The window
 * lists them and edits one; every edit is saved as a Patch 300 ms after the
 * last keystroke, through ferryd on the local socket, so saving never waits
 * for the network.  Calls go through fcall (one at a time, replies taken
 * when the socket is readable); changes made elsewhere (another window,
 * another device) come from a Watch whose descriptor is a GLib source, so
 * nothing polls for them.
 *
 * What the editor shows, and the rule that keeps typing safe: the editor
 * holds the note at rev cur_rev plus the user's unsaved edits (dirty).  A
 * save is a Patch of the fields the user changed, with if_rev = cur_rev, so
 * it can never overwrite a change it did not see.  A change from elsewhere
 * is shown at once when the editor has nothing unsaved; while the user is
 * typing it is held, and the save's RevMismatch brings it in: fields the
 * user did not touch take the other value, and if both changed the same
 * field the banner offers keep mine / keep theirs.  A conflict ferry found
 * while syncing (the doc says conflicted) shows in the same banner, with
 * both values at the conflicting path, and is settled with Resolve.
 *
 * The header bar shows the sync state (synced / syncing / offline / N
 * conflicts) from Status, asked again after every change and every
 * STATUS_MS (libferry has no Status stream), and who else is on the notes
 * (presence, "also here: laptop-2") from the Watch's presence replies
 * (ferry_watch_presence); with a ferryd without presence the label stays
 * empty.
 *
 * Ctrl+S saves at once.  For tests: with FERRY_NOTES_STATE=FILE the app
 * writes what it shows to FILE (JSON, replaced atomically) whenever that
 * changes; FERRY_NOTES_SAVE_MS replaces the 300 ms debounce.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gtk/gtk.h>
#include <glib-unix.h>
#include <jansson.h>

#include "ferry.h"
#include "fcall.h"

#define COLLECTION	"notes"
#define SAVE_DELAY_MS	300	/* debounce of saves while typing */
#define STATUS_MS	2000	/* Status asked again this often */
#define PRESENCE_MS	10000	/* SetPresence refreshed (ferryd's TTL: 30 s) */
#define RECONNECT_MS	2000	/* retry the watch this often when ferryd is gone */
#define LIST_PAGE	500
#define PRESENT_MAX	256	/* presence entries this window keeps */
#define SHOW_MAX	200	/* characters of a value the banner shows */

enum banner_kind {
	BANNER_NONE = 0,
	BANNER_CONFLICT,	/* ferry's conflict: Resolve */
	BANNER_RACE,		/* changed here and elsewhere while typing */
};

struct app {
	GtkApplication	*gapp;
	GtkWidget	*win;
	GtkWidget	*list;
	GtkWidget	*title_entry;
	GtkWidget	*text_view;
	GtkTextBuffer	*buf;
	GtkWidget	*editor;
	GtkWidget	*sync_label;
	GtkWidget	*presence_label;
	GtkWidget	*banner;
	GtkWidget	*banner_label;
	GtkWidget	*error_label;

	char		*socket;
	char		*title;
	char		*name;		/* presence: who this window is */
	char		*state_file;

	struct fcall	*fc;
	ferry		*watch;
	guint		 watch_src;
	int64_t		 last_seq;	/* resume the watch after this */
	guint		 status_src;
	guint		 presence_src;
	guint		 reconnect_src;
	guint		 state_src;
	bool		 presence_ok;	/* ferryd has presence */
	char		*token;		/* in our state: tells our entry */
	bool		 announced;	/* our entry is at announced_id */
	char		*announced_id;
	GHashTable	*present;	/* "session\ncollection\nid" -> Presence */

	GHashTable	*rows;		/* id -> GtkListBoxRow */

	/* The open note. */
	char		*cur_id;
	json_int_t	 cur_rev;
	char		*saved_title;	/* what cur_rev holds */
	char		*saved_text;
	bool		 loading;	/* the editor is being set, not typed in */
	bool		 dirty;
	bool		 saving;
	bool		 held;		/* a newer rev exists; load it when clean */
	guint		 save_src;
	guint		 save_ms;	/* the debounce (SAVE_DELAY_MS) */
	char		*pending_open;	/* open this note once saved */
	bool		 reselecting;
	json_int_t	 conflicted;	/* the doc says conflicted */

	enum banner_kind banner_kind;
	json_t		*conflict_id;	/* BANNER_CONFLICT: as ferryd gave it */
	json_t		*race_theirs;	/* BANNER_RACE: the other doc */

	char		*sync_text;
	char		*presence_text;
	char		*error_text;
};

static void	open_note(struct app *, const char *);
static void	load_doc(struct app *, json_t *);
static void	save_now(struct app *);
static void	refresh_status(struct app *);
static void	refresh_conflict(struct app *);
static void	state_changed(struct app *);
static void	watch_start(struct app *);
static void	presence_reply(struct app *, json_t *);
static void	presence_clear(struct app *);
static void	presence_announce(struct app *);

/* --- small helpers --- */

static const char *
str_member(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "";
}

static char *
editor_text(struct app *a)
{
	GtkTextIter s, e;

	gtk_text_buffer_get_bounds(a->buf, &s, &e);
	return gtk_text_buffer_get_text(a->buf, &s, &e, FALSE);
}

static const char *
editor_title(struct app *a)
{
	return gtk_editable_get_text(GTK_EDITABLE(a->title_entry));
}

static void
set_str(char **dst, const char *src)
{
	g_free(*dst);
	*dst = g_strdup(src);
}

/* A value as the banner shows it: a string as it is, else JSON. */
static char *
show_value(json_t *v)
{
	char *s, *out;

	if (v == NULL)
		return g_strdup("(none)");
	if (json_is_string(v))
		s = g_strdup(json_string_value(v));
	else {
		char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

		s = g_strdup(d != NULL ? d : "?");
		free(d);
	}
	if (g_utf8_strlen(s, -1) > SHOW_MAX) {
		out = g_utf8_substring(s, 0, SHOW_MAX);
		g_free(s);
		s = g_strconcat(out, "…", NULL);
		g_free(out);
	}
	return s;
}

/* The value at an RFC 6901 pointer ("" is the whole value), or NULL. */
static json_t *
pointer_get(json_t *v, const char *path)
{
	char **parts, *tok;
	GString *key;
	size_t i, j;

	if (*path == '\0')
		return v;
	if (*path != '/')
		return NULL;
	parts = g_strsplit(path + 1, "/", -1);
	for (i = 0; parts[i] != NULL && v != NULL; i++) {
		key = g_string_new(NULL);
		for (tok = parts[i], j = 0; tok[j] != '\0'; j++) {
			if (tok[j] == '~' && tok[j + 1] == '0') {
				g_string_append_c(key, '~');
				j++;
			} else if (tok[j] == '~' && tok[j + 1] == '1') {
				g_string_append_c(key, '/');
				j++;
			} else
				g_string_append_c(key, tok[j]);
		}
		if (json_is_object(v))
			v = json_object_get(v, key->str);
		else if (json_is_array(v))
			v = json_array_get(v, strtoul(key->str, NULL, 10));
		else
			v = NULL;
		g_string_free(key, TRUE);
	}
	g_strfreev(parts);
	return v;
}

static void
show_error(struct app *a, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	gtk_label_set_text(GTK_LABEL(a->error_label), s);
	gtk_widget_set_visible(a->error_label, *s != '\0');
	g_free(a->error_text);
	a->error_text = s;
	state_changed(a);
}

/* --- the state file (tests) --- */

static json_t *
state_json(struct app *a)
{
	GtkWidget *row;
	json_t *o, *titles;
	char *text;

	titles = json_array();
	for (row = gtk_widget_get_first_child(a->list); row != NULL;
	    row = gtk_widget_get_next_sibling(row)) {
		GtkWidget *l = gtk_list_box_row_get_child(
		    GTK_LIST_BOX_ROW(row));

		json_array_append_new(titles,
		    json_string(gtk_label_get_text(GTK_LABEL(l))));
	}
	text = editor_text(a);
	o = json_pack("{s:s,s:s?,s:s,s:s,s:b,s:b,s:I,s:s,s:s,s:o,s:s?,s:s?}",
	    "window", a->title, "note", a->cur_id,
	    "note_title", editor_title(a), "text", text,
	    "dirty", a->dirty, "held", a->held, "rev", (json_int_t)a->cur_rev,
	    "sync", a->sync_text != NULL ? a->sync_text : "",
	    "presence", a->presence_text != NULL ? a->presence_text : "",
	    "notes", titles,
	    "banner", a->banner_kind != BANNER_NONE ?
	    gtk_label_get_text(GTK_LABEL(a->banner_label)) : NULL,
	    "error", a->error_text);
	g_free(text);
	return o;
}

static gboolean
state_write_cb(gpointer data)
{
	struct app *a = data;
	json_t *o;
	char *tmp;

	a->state_src = 0;
	o = state_json(a);
	tmp = g_strconcat(a->state_file, ".tmp", NULL);
	if (json_dump_file(o, tmp, JSON_COMPACT) == 0)
		(void)rename(tmp, a->state_file);
	g_free(tmp);
	json_decref(o);
	return G_SOURCE_REMOVE;
}

/* What the window shows changed: write the state file (once per turn). */
static void
state_changed(struct app *a)
{
	if (a->state_file != NULL && a->state_src == 0)
		a->state_src = g_idle_add(state_write_cb, a);
}

/* --- the list --- */

static GtkWidget *
row_label(GtkWidget *row)
{
	return gtk_list_box_row_get_child(GTK_LIST_BOX_ROW(row));
}

static int
row_sort_cb(GtkListBoxRow *r1, GtkListBoxRow *r2, gpointer data)
{
	int c = g_utf8_collate(gtk_label_get_text(GTK_LABEL(row_label(
	    GTK_WIDGET(r1)))), gtk_label_get_text(GTK_LABEL(row_label(
	    GTK_WIDGET(r2)))));

	if (c != 0)
		return c;
	return strcmp(g_object_get_data(G_OBJECT(r1), "id"),
	    g_object_get_data(G_OBJECT(r2), "id"));
}

/* Add or rename the row of note id; a deleted note loses its row. */
static void
list_update(struct app *a, const char *id, json_t *body, bool deleted)
{
	GtkWidget *row = g_hash_table_lookup(a->rows, id);
	const char *t = str_member(body, "title");

	if (deleted) {
		if (row != NULL) {
			g_hash_table_remove(a->rows, id);
			gtk_list_box_remove(GTK_LIST_BOX(a->list), row);
		}
		state_changed(a);
		return;
	}
	if (*t == '\0')
		t = "Untitled";
	if (row == NULL) {
		row = gtk_list_box_row_new();
		gtk_list_box_row_set_child(GTK_LIST_BOX_ROW(row),
		    gtk_label_new(t));
		gtk_widget_set_halign(row_label(row), GTK_ALIGN_START);
		g_object_set_data_full(G_OBJECT(row), "id", g_strdup(id),
		    g_free);
		g_hash_table_insert(a->rows, g_strdup(id), row);
		gtk_list_box_append(GTK_LIST_BOX(a->list), row);
	} else if (strcmp(gtk_label_get_text(GTK_LABEL(row_label(row))),
	    t) != 0) {
		gtk_label_set_text(GTK_LABEL(row_label(row)), t);
		gtk_list_box_row_changed(GTK_LIST_BOX_ROW(row));
	}
	state_changed(a);
}

static void
list_page_done(const struct fcall_result *res, void *arg)
{
	struct app *a = arg;
	json_t *docs, *d, *p;
	const char *next;
	size_t i;

	if (res->r < 0) {
		show_error(a, "cannot list notes: %s", res->msg);
		return;
	}
	docs = json_object_get(res->reply, "docs");
	json_array_foreach(docs, i, d)
		list_update(a, str_member(d, "id"),
		    json_object_get(d, "body"),
		    json_is_true(json_object_get(d, "deleted")));
	next = json_string_value(json_object_get(res->reply, "next"));
	if (next != NULL) {
		p = json_pack("{s:s,s:s,s:i}", "collection", COLLECTION,
		    "after", next, "limit", LIST_PAGE);
		fcall_call(a->fc, "io.ferry.List", p, list_page_done, a);
		return;
	}
	/* The whole list is here: open the first note if none is. */
	if (a->cur_id == NULL) {
		GtkListBoxRow *r = gtk_list_box_get_row_at_index(
		    GTK_LIST_BOX(a->list), 0);

		if (r != NULL)
			gtk_list_box_select_row(GTK_LIST_BOX(a->list), r);
	}
}

/* The user stays on the open note (a question about it is open): its row
 * is the selected one again. */
static void
list_select_current(struct app *a)
{
	GtkWidget *row;

	g_free(a->pending_open);
	a->pending_open = NULL;
	if (a->cur_id == NULL ||
	    (row = g_hash_table_lookup(a->rows, a->cur_id)) == NULL)
		return;
	a->reselecting = true;
	gtk_list_box_select_row(GTK_LIST_BOX(a->list), GTK_LIST_BOX_ROW(row));
	a->reselecting = false;
}

static void
list_load(struct app *a)
{
	fcall_call(a->fc, "io.ferry.List", json_pack("{s:s,s:i}",
	    "collection", COLLECTION, "limit", LIST_PAGE), list_page_done, a);
}

/* --- the banner --- */

static void
banner_hide(struct app *a)
{
	a->banner_kind = BANNER_NONE;
	json_decref(a->race_theirs);
	a->race_theirs = NULL;
	gtk_widget_set_visible(a->banner, FALSE);
	state_changed(a);
}

static void
banner_show(struct app *a, enum banner_kind kind, const char *path,
    json_t *mine, json_t *theirs)
{
	char *m = show_value(mine), *t = show_value(theirs), *s;

	s = g_strdup_printf("%s at %s\nmine: %s\ntheirs: %s",
	    kind == BANNER_CONFLICT ? "Conflict" :
	    "Changed elsewhere while you typed", path, m, t);
	gtk_label_set_text(GTK_LABEL(a->banner_label), s);
	a->banner_kind = kind;
	gtk_widget_set_visible(a->banner, TRUE);
	g_free(m);
	g_free(t);
	g_free(s);
	state_changed(a);
}

static void
resolve_done(const struct fcall_result *res, void *arg)
{
	struct app *a = arg;

	if (res->r < 0) {
		show_error(a, "cannot resolve: %s", res->msg);
		return;
	}
	banner_hide(a);
	if (a->cur_id != NULL)
		open_note(a, a->cur_id);
	refresh_status(a);
}

/* keep mine (mine true) or keep theirs. */
static void
banner_choose(struct app *a, bool mine)
{
	json_t *theirs;

	if (a->banner_kind == BANNER_CONFLICT) {
		fcall_call(a->fc, "io.ferry.Resolve", json_pack("{s:O,s:s}",
		    "conflict_id", a->conflict_id, "strategy",
		    mine ? "mine" : "theirs"), resolve_done, a);
		return;
	}
	if (a->banner_kind != BANNER_RACE)
		return;
	theirs = json_incref(a->race_theirs);
	banner_hide(a);
	if (mine) {
		/* Save what the editor holds on top of theirs. */
		a->cur_rev = json_integer_value(json_object_get(theirs,
		    "rev"));
		set_str(&a->saved_title, str_member(json_object_get(theirs,
		    "body"), "title"));
		set_str(&a->saved_text, str_member(json_object_get(theirs,
		    "body"), "text"));
		a->dirty = true;
		save_now(a);
	} else {
		a->dirty = false;
		load_doc(a, theirs);
	}
	json_decref(theirs);
}

static void
keep_mine_cb(GtkButton *b, gpointer data)
{
	banner_choose(data, true);
}

static void
keep_theirs_cb(GtkButton *b, gpointer data)
{
	banner_choose(data, false);
}

static void
conflicts_done(const struct fcall_result *res, void *arg)
{
	struct app *a = arg;
	json_t *list, *c, *paths;
	const char *path;
	size_t i;

	if (res->r < 0 || a->cur_id == NULL)
		return;
	list = json_object_get(res->reply, "conflicts");
	json_array_foreach(list, i, c) {
		if (strcmp(str_member(c, "collection"), COLLECTION) != 0 ||
		    strcmp(str_member(c, "id"), a->cur_id) != 0)
			continue;
		paths = json_object_get(c, "paths");
		path = json_string_value(json_array_get(paths, 0));
		if (path == NULL)
			path = "";
		json_decref(a->conflict_id);
		a->conflict_id = json_incref(json_object_get(c,
		    "conflict_id"));
		banner_show(a, BANNER_CONFLICT, *path != '\0' ? path : "/",
		    pointer_get(json_object_get(c, "mine"), path),
		    pointer_get(json_object_get(c, "theirs"), path));
		return;
	}
	if (a->banner_kind == BANNER_CONFLICT)
		banner_hide(a);
}

/* Ask whether the open note has a conflict; show or hide the banner. */
static void
refresh_conflict(struct app *a)
{
	if (a->banner_kind == BANNER_RACE)
		return;
	fcall_call(a->fc, "io.ferry.Conflicts", NULL, conflicts_done, a);
}

/* --- the editor --- */

/* Set a widget's text unless it already says that (keeps the cursor). */
static void
editor_set(struct app *a, const char *title, const char *text)
{
	char *cur = editor_text(a);
	int off;
	GtkTextIter it;

	a->loading = true;
	if (strcmp(editor_title(a), title) != 0)
		gtk_editable_set_text(GTK_EDITABLE(a->title_entry), title);
	if (strcmp(cur, text) != 0) {
		g_object_get(a->buf, "cursor-position", &off, NULL);
		gtk_text_buffer_set_text(a->buf, text, -1);
		gtk_text_buffer_get_iter_at_offset(a->buf, &it, off);
		gtk_text_buffer_place_cursor(a->buf, &it);
	}
	a->loading = false;
	g_free(cur);
}

/* Show doc (a Get or Patch reply, or an event) in the editor. */
static void
load_doc(struct app *a, json_t *doc)
{
	json_t *body = json_object_get(doc, "body");

	a->cur_rev = json_integer_value(json_object_get(doc, "rev"));
	a->held = false;
	set_str(&a->saved_title, str_member(body, "title"));
	set_str(&a->saved_text, str_member(body, "text"));
	editor_set(a, a->saved_title, a->saved_text);
	a->dirty = false;
	if (!gtk_widget_has_focus(a->title_entry) &&
	    !gtk_widget_has_focus(a->text_view))
		gtk_widget_grab_focus(a->text_view);
	list_update(a, str_member(doc, "id"), body, false);
	if (json_is_true(json_object_get(doc, "conflicted")))
		refresh_conflict(a);
	else if (a->banner_kind == BANNER_CONFLICT)
		banner_hide(a);
	state_changed(a);
}

static void
get_done(const struct fcall_result *res, void *arg)
{
	struct app *a = arg;
	json_t *doc;

	if (res->r < 0) {
		show_error(a, "cannot open the note: %s", res->msg);
		return;
	}
	doc = json_object_get(res->reply, "doc");
	if (a->cur_id == NULL || strcmp(str_member(doc, "id"), a->cur_id) != 0)
		return;
	if (a->dirty || a->saving) {
		a->held = true;
		return;
	}
	load_doc(a, doc);
}

static void
open_note(struct app *a, const char *id)
{
	char *keep;

	if ((a->dirty || a->saving) && a->cur_id != NULL &&
	    strcmp(a->cur_id, id) != 0) {
		/* Edits first: the switch happens when they are saved. */
		set_str(&a->pending_open, id);
		save_now(a);
		return;
	}
	keep = g_strdup(id);
	g_free(a->pending_open);
	a->pending_open = NULL;
	if (a->cur_id == NULL || strcmp(a->cur_id, keep) != 0) {
		set_str(&a->cur_id, keep);
		a->cur_rev = 0;
		a->dirty = false;
		a->saving = false;
		if (a->banner_kind != BANNER_NONE)
			banner_hide(a);
		editor_set(a, "", "");
	}
	gtk_widget_set_sensitive(a->editor, TRUE);
	fcall_call(a->fc, "io.ferry.Get", json_pack("{s:s,s:s}",
	    "collection", COLLECTION, "id", keep), get_done, a);
	g_free(keep);
	/* Tell the others which note this window is on. */
	presence_announce(a);
	state_changed(a);
}

/*
 * The save's RevMismatch: the note changed elsewhere since cur_rev.
 * Fields only the other side changed are taken; if both changed one, the
 * banner asks; else the save goes again on top of the current rev.
 */
static void
save_stale(struct app *a, json_t *current)
{
	json_t *body = json_object_get(current, "body");
	const char *field[2] = { "title", "text" };
	char *mine[2], *saved[2];
	const char *theirs;
	int i, race = -1;

	mine[0] = g_strdup(editor_title(a));
	mine[1] = editor_text(a);
	saved[0] = a->saved_title;
	saved[1] = a->saved_text;
	for (i = 0; i < 2; i++) {
		theirs = str_member(body, field[i]);
		if (strcmp(mine[i], saved[i]) != 0 &&
		    strcmp(theirs, saved[i]) != 0 &&
		    strcmp(theirs, mine[i]) != 0)
			race = i;
	}
	if (race >= 0) {
		json_t *m = json_string(mine[race]);
		char *path = g_strconcat("/", field[race], NULL);

		a->race_theirs = json_incref(current);
		banner_show(a, BANNER_RACE, path, m,
		    json_object_get(body, field[race]));
		list_select_current(a);
		json_decref(m);
		g_free(path);
		goto out;
	}
	/* Take theirs where the editor has no edit, then save again. */
	a->loading = true;
	if (strcmp(mine[0], saved[0]) == 0)
		gtk_editable_set_text(GTK_EDITABLE(a->title_entry),
		    str_member(body, "title"));
	a->loading = false;
	if (strcmp(mine[1], saved[1]) == 0)
		editor_set(a, editor_title(a), str_member(body, "text"));
	a->cur_rev = json_integer_value(json_object_get(current, "rev"));
	set_str(&a->saved_title, str_member(body, "title"));
	set_str(&a->saved_text, str_member(body, "text"));
	save_now(a);
out:
	g_free(mine[0]);
	g_free(mine[1]);
}

struct save {
	struct app	*a;
	char		*id;
	char		*title;
	char		*text;
};

static void
save_done(const struct fcall_result *res, void *arg)
{
	struct save *s = arg;
	struct app *a = s->a;
	json_t *doc, *cur;
	char *now;

	if (a->cur_id == NULL || strcmp(a->cur_id, s->id) != 0)
		goto out;	/* the window moved on; the reply is kept */
	a->saving = false;
	if (res->r == -ESTALE && res->errparams != NULL &&
	    (cur = json_object_get(res->errparams, "current")) != NULL) {
		save_stale(a, cur);
		goto out;
	}
	if (res->r < 0) {
		/* The edits stay in the editor, and the user on this note. */
		show_error(a, "cannot save: %s", res->msg);
		list_select_current(a);
		goto out;
	}
	show_error(a, "%s", "");
	doc = json_object_get(res->reply, "doc");
	a->cur_rev = json_integer_value(json_object_get(doc, "rev"));
	set_str(&a->saved_title, s->title);
	set_str(&a->saved_text, s->text);
	list_update(a, s->id, json_object_get(doc, "body"), false);
	now = editor_text(a);
	a->dirty = strcmp(now, a->saved_text) != 0 ||
	    strcmp(editor_title(a), a->saved_title) != 0;
	g_free(now);
	if (a->dirty)
		save_now(a);
	else if (a->pending_open != NULL)
		open_note(a, a->pending_open);
	else if (a->held)
		open_note(a, a->cur_id);
	refresh_status(a);
	state_changed(a);
out:
	g_free(s->id);
	g_free(s->title);
	g_free(s->text);
	g_free(s);
}

/* Send the editor's edits now (a Patch of the changed fields). */
static void
save_now(struct app *a)
{
	struct save *s;
	json_t *patch;

	if (a->save_src != 0) {
		g_source_remove(a->save_src);
		a->save_src = 0;
	}
	if (!a->dirty || a->saving || a->cur_id == NULL ||
	    a->banner_kind == BANNER_RACE)
		return;
	s = g_new0(struct save, 1);
	s->a = a;
	s->id = g_strdup(a->cur_id);
	s->title = g_strdup(editor_title(a));
	s->text = editor_text(a);
	patch = json_object();
	if (strcmp(s->title, a->saved_title) != 0)
		json_object_set_new(patch, "title", json_string(s->title));
	if (strcmp(s->text, a->saved_text) != 0)
		json_object_set_new(patch, "text", json_string(s->text));
	a->saving = true;
	fcall_call(a->fc, "io.ferry.Patch", json_pack("{s:s,s:s,s:o,s:I}",
	    "collection", COLLECTION, "id", s->id, "patch", patch,
	    "if_rev", (json_int_t)a->cur_rev), save_done, s);
}

static gboolean
save_timer_cb(gpointer data)
{
	struct app *a = data;

	a->save_src = 0;
	save_now(a);
	return G_SOURCE_REMOVE;
}

/* The user typed: save SAVE_DELAY_MS after the last keystroke. */
static void
edited(struct app *a)
{
	if (a->loading || a->cur_id == NULL)
		return;
	a->dirty = true;
	if (a->save_src != 0)
		g_source_remove(a->save_src);
	a->save_src = g_timeout_add(a->save_ms, save_timer_cb, a);
	state_changed(a);
}

static void
text_changed_cb(GtkTextBuffer *b, gpointer data)
{
	edited(data);
}

static void
title_changed_cb(GtkEditable *e, gpointer data)
{
	edited(data);
}

static void
row_selected_cb(GtkListBox *box, GtkListBoxRow *row, gpointer data)
{
	struct app *a = data;

	if (row != NULL && !a->reselecting)
		open_note(a, g_object_get_data(G_OBJECT(row), "id"));
}

static void
new_done(const struct fcall_result *res, void *arg)
{
	struct app *a = arg;
	json_t *doc;
	GtkWidget *row;

	if (res->r < 0) {
		show_error(a, "cannot create a note: %s", res->msg);
		return;
	}
	doc = json_object_get(res->reply, "doc");
	list_update(a, str_member(doc, "id"), NULL, false);
	row = g_hash_table_lookup(a->rows, str_member(doc, "id"));
	if (row != NULL)
		gtk_list_box_select_row(GTK_LIST_BOX(a->list),
		    GTK_LIST_BOX_ROW(row));
	gtk_widget_grab_focus(a->title_entry);
}

static void
new_note_cb(GtkButton *b, gpointer data)
{
	struct app *a = data;
	char *uuid = g_uuid_string_random(), *id;

	id = g_strconcat("n-", uuid, NULL);
	fcall_call(a->fc, "io.ferry.Put", json_pack("{s:s,s:s,s:{s:s,s:s}}",
	    "collection", COLLECTION, "id", id, "body", "title", "",
	    "text", ""), new_done, a);
	g_free(id);
	g_free(uuid);
}

/* --- changes from elsewhere: the watch --- */

static void
watch_event(struct app *a, json_t *ev)
{
	const char *id = str_member(ev, "id");
	json_int_t rev = json_integer_value(json_object_get(ev, "rev"));
	bool deleted = json_is_true(json_object_get(ev, "deleted"));

	a->last_seq = json_integer_value(json_object_get(ev, "seq"));
	list_update(a, id, json_object_get(ev, "body"), deleted);
	if (a->cur_id == NULL || strcmp(id, a->cur_id) != 0 ||
	    rev <= a->cur_rev)
		return;
	if (deleted) {
		g_free(a->cur_id);
		a->cur_id = NULL;
		a->dirty = false;
		editor_set(a, "", "");
		gtk_widget_set_sensitive(a->editor, FALSE);
		return;
	}
	if (a->dirty || a->saving) {
		a->held = true;	/* the save's RevMismatch brings it in */
		return;
	}
	/* Events carry no conflicted flag: Get says it. */
	open_note(a, id);
}

static gboolean
watch_reconnect_cb(gpointer data)
{
	struct app *a = data;

	a->reconnect_src = 0;
	watch_start(a);
	if (a->watch != NULL)
		list_load(a);
	return G_SOURCE_REMOVE;
}

static void
watch_lost(struct app *a, const char *why)
{
	/* why may be the watch's own message: show it before closing. */
	show_error(a, "%s", why);
	if (a->watch_src != 0)
		g_source_remove(a->watch_src);
	a->watch_src = 0;
	ferry_close(a->watch);
	a->watch = NULL;
	presence_clear(a);
	set_str(&a->sync_text, "ferryd not reachable");
	gtk_label_set_text(GTK_LABEL(a->sync_label), a->sync_text);
	if (a->reconnect_src == 0)
		a->reconnect_src = g_timeout_add(RECONNECT_MS,
		    watch_reconnect_cb, a);
}

static gboolean
watch_readable_cb(gint fd, GIOCondition cond, gpointer data)
{
	struct app *a = data;
	json_error_t jerr;
	json_t *ev;
	char *text;
	int r, n = 0;

	while ((r = ferry_watch_next(a->watch, &text)) > 0) {
		ev = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
		free(text);
		if (json_object_get(ev, "presence") != NULL)
			presence_reply(a, ev);
		else if (ev != NULL && strcmp(str_member(ev, "collection"),
		    COLLECTION) == 0)
			watch_event(a, ev);
		json_decref(ev);
		n++;
	}
	if (r < 0) {
		a->watch_src = 0;
		watch_lost(a, ferry_errmsg(a->watch));
		return G_SOURCE_REMOVE;
	}
	if (n > 0)
		refresh_status(a);
	return G_SOURCE_CONTINUE;
}

/* Open the watch (resuming after last_seq); on failure retry later. */
static void
watch_start(struct app *a)
{
	static const char *const colls[] = { COLLECTION, NULL };
	int r;

	if ((r = ferry_connect(a->socket, &a->watch)) < 0) {
		a->watch = NULL;
		watch_lost(a, ferry_errmsg(NULL));
		return;
	}
	r = ferry_watch_presence(a->watch, colls, a->last_seq,
	    a->presence_ok);
	if (r == -EINVAL && a->presence_ok) {
		/* A ferryd without presence refuses the parameter. */
		a->presence_ok = false;
		ferry_close(a->watch);
		a->watch = NULL;
		watch_start(a);
		return;
	}
	if (r < 0) {
		watch_lost(a, ferry_errmsg(a->watch));
		return;
	}
	a->watch_src = g_unix_fd_add(ferry_fd(a->watch),
	    G_IO_IN | G_IO_HUP | G_IO_ERR, watch_readable_cb, a);
	show_error(a, "%s", "");
}

/* --- the header bar: sync state and presence --- */

static void
status_done(const struct fcall_result *res, void *arg)
{
	struct app *a = arg;
	json_t *st;
	const char *state;
	json_int_t conflicts, pending;
	char *s;

	if (res->r < 0)
		return;
	st = json_object_get(res->reply, "status");
	state = str_member(st, "state");
	conflicts = json_integer_value(json_object_get(st, "conflicts"));
	pending = json_integer_value(json_object_get(st, "pending"));
	if (conflicts > 0)
		s = g_strdup_printf("%lld conflict%s", (long long)conflicts,
		    conflicts == 1 ? "" : "s");
	else if (strcmp(state, "offline") == 0)
		s = g_strdup("offline");
	else if (strcmp(state, "unconfigured") == 0)
		s = g_strdup("local only");
	else if (strcmp(state, "paused") == 0)
		s = g_strdup("paused");
	else if (pending > 0 || strcmp(state, "syncing") == 0)
		s = g_strdup("syncing");
	else
		s = g_strdup("synced");
	if (a->sync_text == NULL || strcmp(s, a->sync_text) != 0) {
		gtk_label_set_text(GTK_LABEL(a->sync_label), s);
		set_str(&a->sync_text, s);
		if (conflicts > 0 && a->cur_id != NULL)
			refresh_conflict(a);
		state_changed(a);
	}
	gtk_widget_set_tooltip_text(a->sync_label,
	    str_member(st, "last_error"));
	g_free(s);
}

static void
refresh_status(struct app *a)
{
	fcall_call(a->fc, "io.ferry.Status", NULL, status_done, a);
}

/*
 * Presence.  Who is here comes from the Watch (ferry_watch_presence): one
 * reply per entry present when it starts, then one per change, kept in
 * a->present by session, collection and id.  This window announces
 * itself with SetPresence on the calls connection (so it lasts while that
 * connection does), refreshed every PRESENCE_MS against ferryd's TTL; its
 * state carries a random token so the window can leave itself out of
 * "also here".
 */
static int
name_cmp(gconstpointer x, gconstpointer y)
{
	return g_utf8_collate(*(const char *const *)x,
	    *(const char *const *)y);
}

/* "also here: " and the others' names, sorted, each once. */
static void
presence_show(struct app *a)
{
	GPtrArray *names = g_ptr_array_new();
	GString *s = g_string_new(NULL);
	GHashTableIter it;
	gpointer v;
	json_t *p, *st;
	const char *name;
	guint i;

	g_hash_table_iter_init(&it, a->present);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		p = v;
		st = json_object_get(p, "state");
		if (strcmp(str_member(st, "window"), a->token) == 0)
			continue;
		if (json_is_true(json_object_get(p, "local"))) {
			name = str_member(st, "name");
			if (*name == '\0')
				name = "another window";
		} else {
			name = str_member(p, "device_name");
			if (*name == '\0')
				name = "another device";
		}
		g_ptr_array_add(names, (gpointer)name);
	}
	g_ptr_array_sort(names, name_cmp);
	for (i = 0; i < names->len; i++) {
		if (i > 0 && strcmp(names->pdata[i], names->pdata[i - 1]) == 0)
			continue;
		g_string_append_printf(s, "%s%s", s->len > 0 ? ", " :
		    "also here: ", (const char *)names->pdata[i]);
	}
	if (a->presence_text == NULL || strcmp(a->presence_text, s->str) != 0) {
		set_str(&a->presence_text, s->str);
		gtk_label_set_text(GTK_LABEL(a->presence_label), s->str);
		state_changed(a);
	}
	g_ptr_array_free(names, TRUE);
	g_string_free(s, TRUE);
}

/*
 * A presence reply of the Watch: {presence, gone}.  An entry is one
 * connection's at one (collection, id): a session may hold several, and
 * one of them going leaves the others.
 */
static void
presence_reply(struct app *a, json_t *r)
{
	json_t *p = json_object_get(r, "presence");
	const char *session = str_member(p, "session");
	char *key;

	if (!json_is_object(p) || *session == '\0')
		return;
	key = g_strdup_printf("%s\n%s\n%s", session,
	    str_member(p, "collection"), str_member(p, "id"));
	if (json_is_true(json_object_get(r, "gone")))
		g_hash_table_remove(a->present, key);
	else if (g_hash_table_contains(a->present, key) ||
	    g_hash_table_size(a->present) < PRESENT_MAX) {
		g_hash_table_replace(a->present, key, json_incref(p));
		key = NULL;
	}
	g_free(key);
	presence_show(a);
}

/* The watch went: who was here is unknown until it comes back. */
static void
presence_clear(struct app *a)
{
	g_hash_table_remove_all(a->present);
	presence_show(a);
}

static void
presence_done(const struct fcall_result *res, void *arg)
{
	struct app *a = arg;

	if (res->r < 0 && res->errname != NULL &&
	    strcmp(res->errname, "org.varlink.service.MethodNotFound") == 0)
		a->presence_ok = false;
}

/* Announce (again) that this window is on the open note. */
static void
presence_announce(struct app *a)
{
	if (!a->presence_ok)
		return;
	/* One entry per (collection, id): the note left goes first. */
	if (a->announced && g_strcmp0(a->announced_id, a->cur_id) != 0)
		fcall_call(a->fc, "io.ferry.SetPresence",
		    json_pack("{s:s,s:s?,s:n}", "collection", COLLECTION,
		    "id", a->announced_id, "state"), presence_done, a);
	a->announced = true;
	set_str(&a->announced_id, a->cur_id);
	fcall_call(a->fc, "io.ferry.SetPresence",
	    json_pack("{s:s,s:s?,s:{s:s,s:s}}", "collection", COLLECTION,
	    "id", a->cur_id, "state", "name", a->name, "window", a->token),
	    presence_done, a);
}

static gboolean
presence_timer_cb(gpointer data)
{
	presence_announce(data);
	return G_SOURCE_CONTINUE;
}

static gboolean
status_timer_cb(gpointer data)
{
	struct app *a = data;

	refresh_status(a);
	/* After the calls connection was lost, announce again. */
	if (a->presence_src == 0) {
		presence_announce(a);
		a->presence_src = g_timeout_add(PRESENCE_MS,
		    presence_timer_cb, a);
	}
	return G_SOURCE_CONTINUE;
}

/* The calls connection went: presence went with it; say so, retry later. */
static void
calls_lost(const char *why, void *arg)
{
	struct app *a = arg;

	if (a->presence_src != 0)
		g_source_remove(a->presence_src);
	a->presence_src = 0;
	a->announced = false;
	set_str(&a->sync_text, "ferryd not reachable");
	gtk_label_set_text(GTK_LABEL(a->sync_label), a->sync_text);
	state_changed(a);
}

/* --- the window --- */

/* Ctrl+S: save now, without waiting for the debounce. */
static gboolean
save_shortcut_cb(GtkWidget *w, GVariant *args, gpointer data)
{
	save_now(data);
	return TRUE;
}

static GtkWidget *
build_banner(struct app *a)
{
	GtkWidget *box, *mine, *theirs, *buttons;

	box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
	gtk_widget_add_css_class(box, "conflict-banner");
	a->banner_label = gtk_label_new("");
	gtk_label_set_wrap(GTK_LABEL(a->banner_label), TRUE);
	gtk_label_set_xalign(GTK_LABEL(a->banner_label), 0);
	gtk_widget_set_hexpand(a->banner_label, TRUE);
	gtk_box_append(GTK_BOX(box), a->banner_label);
	buttons = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
	mine = gtk_button_new_with_mnemonic("Keep _mine");
	theirs = gtk_button_new_with_mnemonic("Keep _theirs");
	g_signal_connect(mine, "clicked", G_CALLBACK(keep_mine_cb), a);
	g_signal_connect(theirs, "clicked", G_CALLBACK(keep_theirs_cb), a);
	gtk_box_append(GTK_BOX(buttons), mine);
	gtk_box_append(GTK_BOX(buttons), theirs);
	gtk_box_append(GTK_BOX(box), buttons);
	gtk_widget_set_visible(box, FALSE);
	return box;
}

static void
add_css(void)
{
	GtkCssProvider *css = gtk_css_provider_new();

	gtk_css_provider_load_from_data(css,
	    ".conflict-banner { background: #fce8b2; padding: 8px; }"
	    ".error-line { color: #a01010; padding: 4px; }"
	    ".sync-label { font-weight: bold; }", -1);
	gtk_style_context_add_provider_for_display(gdk_display_get_default(),
	    GTK_STYLE_PROVIDER(css), GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
	g_object_unref(css);
}

static void
activate_cb(GtkApplication *gapp, gpointer data)
{
	struct app *a = data;
	GtkWidget *header, *paned, *scroll, *right, *newb, *tscroll, *end;
	GtkEventController *keys;

	add_css();
	a->win = gtk_application_window_new(gapp);
	gtk_window_set_title(GTK_WINDOW(a->win), a->title);
	gtk_window_set_default_size(GTK_WINDOW(a->win), 760, 440);

	header = gtk_header_bar_new();
	newb = gtk_button_new_with_label("New note");
	g_signal_connect(newb, "clicked", G_CALLBACK(new_note_cb), a);
	gtk_header_bar_pack_start(GTK_HEADER_BAR(header), newb);
	end = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
	a->presence_label = gtk_label_new("");
	a->sync_label = gtk_label_new("connecting");
	gtk_widget_add_css_class(a->sync_label, "sync-label");
	gtk_box_append(GTK_BOX(end), a->presence_label);
	gtk_box_append(GTK_BOX(end), a->sync_label);
	gtk_header_bar_pack_end(GTK_HEADER_BAR(header), end);
	gtk_window_set_titlebar(GTK_WINDOW(a->win), header);

	paned = gtk_paned_new(GTK_ORIENTATION_HORIZONTAL);
	a->list = gtk_list_box_new();
	gtk_list_box_set_sort_func(GTK_LIST_BOX(a->list), row_sort_cb, a,
	    NULL);
	g_signal_connect(a->list, "row-selected",
	    G_CALLBACK(row_selected_cb), a);
	scroll = gtk_scrolled_window_new();
	gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(scroll), a->list);
	gtk_widget_set_size_request(scroll, 200, -1);
	gtk_paned_set_start_child(GTK_PANED(paned), scroll);
	gtk_paned_set_shrink_start_child(GTK_PANED(paned), FALSE);
	gtk_paned_set_resize_start_child(GTK_PANED(paned), FALSE);
	gtk_paned_set_position(GTK_PANED(paned), 220);

	right = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
	a->banner = build_banner(a);
	gtk_box_append(GTK_BOX(right), a->banner);
	a->error_label = gtk_label_new("");
	gtk_widget_add_css_class(a->error_label, "error-line");
	gtk_label_set_xalign(GTK_LABEL(a->error_label), 0);
	gtk_widget_set_visible(a->error_label, FALSE);
	gtk_box_append(GTK_BOX(right), a->error_label);
	a->editor = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
	a->title_entry = gtk_entry_new();
	gtk_entry_set_placeholder_text(GTK_ENTRY(a->title_entry), "Title");
	g_signal_connect(a->title_entry, "changed",
	    G_CALLBACK(title_changed_cb), a);
	gtk_box_append(GTK_BOX(a->editor), a->title_entry);
	a->text_view = gtk_text_view_new();
	gtk_text_view_set_wrap_mode(GTK_TEXT_VIEW(a->text_view),
	    GTK_WRAP_WORD_CHAR);
	a->buf = gtk_text_view_get_buffer(GTK_TEXT_VIEW(a->text_view));
	g_signal_connect(a->buf, "changed", G_CALLBACK(text_changed_cb), a);
	tscroll = gtk_scrolled_window_new();
	gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(tscroll),
	    a->text_view);
	gtk_widget_set_vexpand(tscroll, TRUE);
	gtk_box_append(GTK_BOX(a->editor), tscroll);
	gtk_widget_set_margin_start(a->editor, 8);
	gtk_widget_set_margin_end(a->editor, 8);
	gtk_widget_set_margin_top(a->editor, 8);
	gtk_widget_set_margin_bottom(a->editor, 8);
	gtk_widget_set_vexpand(a->editor, TRUE);
	gtk_widget_set_sensitive(a->editor, FALSE);
	gtk_box_append(GTK_BOX(right), a->editor);
	gtk_paned_set_end_child(GTK_PANED(paned), right);
	gtk_window_set_child(GTK_WINDOW(a->win), paned);
	keys = gtk_shortcut_controller_new();
	gtk_event_controller_set_propagation_phase(keys, GTK_PHASE_CAPTURE);
	gtk_shortcut_controller_add_shortcut(GTK_SHORTCUT_CONTROLLER(keys),
	    gtk_shortcut_new(gtk_shortcut_trigger_parse_string("<Control>s"),
	    gtk_callback_action_new(save_shortcut_cb, a, NULL)));
	gtk_widget_add_controller(a->win, keys);

	a->fc = fcall_new(a->socket, calls_lost, a);
	watch_start(a);
	list_load(a);
	status_timer_cb(a);
	a->status_src = g_timeout_add(STATUS_MS, status_timer_cb, a);
	gtk_window_present(GTK_WINDOW(a->win));
	gtk_widget_grab_focus(a->text_view);
	state_changed(a);
}

static void
app_free(struct app *a)
{
	guint *srcs[] = { &a->status_src, &a->presence_src, &a->save_src,
	    &a->reconnect_src, &a->state_src, &a->watch_src };
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(srcs); i++)
		if (*srcs[i] != 0)
			g_source_remove(*srcs[i]);
	fcall_free(a->fc);
	ferry_close(a->watch);
	if (a->rows != NULL)
		g_hash_table_destroy(a->rows);
	if (a->present != NULL)
		g_hash_table_destroy(a->present);
	g_free(a->token);
	g_free(a->announced_id);
	json_decref(a->race_theirs);
	json_decref(a->conflict_id);
	g_free(a->socket);
	g_free(a->title);
	g_free(a->name);
	g_free(a->cur_id);
	g_free(a->pending_open);
	g_free(a->saved_title);
	g_free(a->saved_text);
	g_free(a->sync_text);
	g_free(a->presence_text);
	g_free(a->error_text);
}

static void
shutdown_cb(GApplication *gapp, gpointer data)
{
	struct app *a = data;

	/* Unsaved edits go to ferryd before the window goes. */
	if (a->dirty && !a->saving && a->cur_id != NULL && a->fc != NULL) {
		ferry *f;
		json_t *p;
		char *text = editor_text(a), *pj;

		if (ferry_connect(a->socket, &f) == 0) {
			p = json_pack("{s:s,s:s}", "title", editor_title(a),
			    "text", text);
			pj = json_dumps(p, JSON_COMPACT);
			(void)ferry_patch(f, COLLECTION, a->cur_id, pj,
			    a->cur_rev, NULL);
			free(pj);
			json_decref(p);
			ferry_close(f);
		}
		g_free(text);
	}
}

static gboolean
term_cb(gpointer data)
{
	struct app *a = data;

	g_application_quit(G_APPLICATION(a->gapp));
	return G_SOURCE_REMOVE;
}

static void
usage(void)
{
	fprintf(stderr, "usage: ferry-notes [--socket PATH] [--title TEXT] "
	    "[--name NAME]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct app a;
	char *gargv[2], *env, *end;
	long v;
	int i, status;

	memset(&a, 0, sizeof a);
	for (i = 1; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "--socket") == 0)
			a.socket = g_strdup(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--title") == 0)
			a.title = g_strdup(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--name") == 0)
			a.name = g_strdup(argv[++i]);
		else
			usage();
	}
	if (a.title == NULL)
		a.title = g_strdup("ferry notes");
	if (a.name == NULL)
		a.name = g_strdup(g_get_host_name());
	a.state_file = getenv("FERRY_NOTES_STATE");
	/* Tests hold edits unsaved with a long debounce (then Ctrl+S). */
	a.save_ms = SAVE_DELAY_MS;
	if ((env = getenv("FERRY_NOTES_SAVE_MS")) != NULL) {
		v = strtol(env, &end, 10);
		if (*env == '\0' || *end != '\0' || v < 0 || v > 3600000) {
			fprintf(stderr, "ferry-notes: FERRY_NOTES_SAVE_MS=%s is "
			    "not a number of milliseconds (0-3600000)\n", env);
			return 2;
		}
		a.save_ms = (guint)v;
	}
	a.presence_ok = true;
	a.token = g_uuid_string_random();
	a.present = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
	    (GDestroyNotify)json_decref);
	a.last_seq = -1;
	a.rows = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	a.gapp = gtk_application_new("io.ferry.Notes",
	    G_APPLICATION_NON_UNIQUE);
	g_signal_connect(a.gapp, "activate", G_CALLBACK(activate_cb), &a);
	g_signal_connect(a.gapp, "shutdown", G_CALLBACK(shutdown_cb), &a);
	g_unix_signal_add(SIGTERM, term_cb, &a);
	g_unix_signal_add(SIGINT, term_cb, &a);
	gargv[0] = argv[0];
	gargv[1] = NULL;
	status = g_application_run(G_APPLICATION(a.gapp), 1, gargv);
	g_object_unref(a.gapp);
	app_free(&a);
	return status;
}
