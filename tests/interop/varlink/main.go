// Command varlink-interop talks to a running ferryd through an independent
// varlink implementation, Debian's varlink/go (golang-github-varlink-go-dev),
// with nothing but what ferryd serves: the promise of issue 9 that apps
// nobody on this project wrote work with ferry from its documents alone.
// tests/t/t4001-interop-varlink.sh builds and runs it.
//
// It parses every interface ferryd names in GetInfo with varlink/go's idl
// package (the parser its interface generator uses); calls every method of
// io.ferry with valid arguments; checks every reply, streamed or not, and
// every error against the parsed interface (each field declared, of its
// type, required ones present, no others); streams Watch and sees the
// event of a Put made on another connection; and sends ill-typed
// parameters, which must come back as org.varlink.service.InvalidParameter
// naming the parameter and carrying nothing else.
//
// Usage: varlink-interop SOCKET COLLECTION [FILE]
// FILE is the installed io.ferry.varlink: it must parse too, and be the
// very text ferryd serves.  The daemon must have a remote that takes a
// key rotation (Sync, History and RotateKey are called) and at least
// one open conflict (GetConflict and Resolve are called on it).  Each check
// prints "ok: ..."; the first failure prints "FAIL: ..." and exits 1.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/varlink/go/varlink"
	"github.com/varlink/go/varlink/idl"
)

var (
	ctx    context.Context
	ifaces = map[string]*idl.IDL{}
	called = map[string]bool{}
)

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func ok(format string, args ...interface{}) {
	fmt.Printf("ok: "+format+"\n", args...)
}

// decode parses JSON keeping numbers as written, so that 1 and 1.5 differ.
func decode(raw []byte) (interface{}, error) {
	var v interface{}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// checkType checks v against t, a type of iface; path names v in errors.
func checkType(iface *idl.IDL, t *idl.Type, v interface{}, path string) error {
	switch t.Kind {
	case idl.TypeMaybe:
		if v == nil {
			return nil
		}
		return checkType(iface, t.ElementType, v, path)
	case idl.TypeBool:
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: %v is not a bool", path, v)
		}
	case idl.TypeInt:
		n, ok := v.(json.Number)
		if !ok {
			return fmt.Errorf("%s: %v is not an int", path, v)
		}
		if _, err := n.Int64(); err != nil {
			return fmt.Errorf("%s: %v is not an int", path, v)
		}
	case idl.TypeFloat:
		if _, ok := v.(json.Number); !ok {
			return fmt.Errorf("%s: %v is not a float", path, v)
		}
	case idl.TypeString:
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%s: %v is not a string", path, v)
		}
	case idl.TypeObject:
		if _, ok := v.(map[string]interface{}); !ok {
			return fmt.Errorf("%s: %v is not an object", path, v)
		}
	case idl.TypeArray:
		a, ok := v.([]interface{})
		if !ok {
			return fmt.Errorf("%s: %v is not an array", path, v)
		}
		for i, e := range a {
			p := fmt.Sprintf("%s[%d]", path, i)
			if err := checkType(iface, t.ElementType, e, p); err != nil {
				return err
			}
		}
	case idl.TypeMap:
		m, ok := v.(map[string]interface{})
		if !ok {
			return fmt.Errorf("%s: %v is not a map", path, v)
		}
		for k, e := range m {
			p := fmt.Sprintf("%s[%q]", path, k)
			if err := checkType(iface, t.ElementType, e, p); err != nil {
				return err
			}
		}
	case idl.TypeEnum:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: %v is not an enum value", path, v)
		}
		for _, f := range t.Fields {
			if f.Name == s {
				return nil
			}
		}
		return fmt.Errorf("%s: %q is not one of the enum's values", path, s)
	case idl.TypeStruct:
		return checkStruct(iface, t, v, path)
	case idl.TypeAlias:
		for _, a := range iface.Aliases {
			if a.Name == t.Alias {
				return checkType(iface, a.Type, v, path)
			}
		}
		return fmt.Errorf("%s: type %s is not defined", path, t.Alias)
	default:
		return fmt.Errorf("%s: unknown type kind %d", path, t.Kind)
	}
	return nil
}

func checkStruct(iface *idl.IDL, t *idl.Type, v interface{}, path string) error {
	m, ok := v.(map[string]interface{})
	if !ok {
		return fmt.Errorf("%s: %v is not an object", path, v)
	}
	declared := map[string]bool{}
	for _, f := range t.Fields {
		declared[f.Name] = true
		p := path + "." + f.Name
		e, present := m[f.Name]
		if !present || e == nil {
			if f.Type.Kind != idl.TypeMaybe {
				return fmt.Errorf("%s: required, missing", p)
			}
			continue
		}
		if err := checkType(iface, f.Type, e, p); err != nil {
			return err
		}
	}
	keys := []string{}
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !declared[k] {
			return fmt.Errorf("%s.%s: not declared", path, k)
		}
	}
	return nil
}

// split "io.ferry.Get" into its interface and member.
func split(name string) (*idl.IDL, string) {
	i := strings.LastIndex(name, ".")
	if i <= 0 {
		fail("%s is not a qualified name", name)
	}
	iface := ifaces[name[:i]]
	if iface == nil {
		fail("%s: interface %s was not served", name, name[:i])
	}
	return iface, name[i+1:]
}

func method(name string) (*idl.IDL, *idl.Method) {
	iface, member := split(name)
	for _, m := range iface.Methods {
		if m.Name == member {
			return iface, m
		}
	}
	fail("%s is not declared", name)
	return nil, nil
}

// checkReply type-checks a reply of method against its declared output.
func checkReply(name string, raw json.RawMessage) map[string]interface{} {
	iface, m := method(name)
	v, err := decode(raw)
	if err != nil {
		fail("%s: reply is not JSON: %v", name, err)
	}
	if err := checkStruct(iface, m.Out, v, name+" reply"); err != nil {
		fail("%s: %v; reply %s", name, err, raw)
	}
	return v.(map[string]interface{})
}

// checkError type-checks an error reply against its declaration.
func checkError(e *varlink.Error) map[string]interface{} {
	iface, member := split(e.Name)
	var decl *idl.Error
	for _, d := range iface.Errors {
		if d.Name == member {
			decl = d
		}
	}
	if decl == nil {
		fail("error %s is not declared", e.Name)
	}
	raw := []byte("{}")
	if p, ok := e.Parameters.(*json.RawMessage); ok && p != nil {
		raw = *p
	}
	v, err := decode(raw)
	if err != nil {
		fail("%s: parameters are not JSON: %v", e.Name, err)
	}
	if err := checkStruct(iface, decl.Type, v, e.Name); err != nil {
		fail("%s: %v; parameters %s", e.Name, err, raw)
	}
	return v.(map[string]interface{})
}

// asError is err as a varlink error reply.  varlink/go hands
// org.varlink.service's errors over as types of its own, their parameters
// decoded: those are encoded again (the exact bytes are checked by raw).
func asError(err error) *varlink.Error {
	var ve *varlink.Error
	if errors.As(err, &ve) {
		return ve
	}
	switch e := err.(type) {
	case *varlink.InterfaceNotFound, *varlink.MethodNotFound,
		*varlink.MethodNotImplemented, *varlink.InvalidParameter:
		b, _ := json.Marshal(e)
		rm := json.RawMessage(b)
		return &varlink.Error{Name: e.Error(), Parameters: &rm}
	}
	return nil
}

// call makes one call, type-checks the reply, and returns it.
func call(c *varlink.Connection, name string, params interface{}) map[string]interface{} {
	called[name] = true
	var raw json.RawMessage
	if err := c.Call(ctx, name, params, &raw); err != nil {
		if ve := asError(err); ve != nil {
			checkError(ve)
		}
		fail("%s: %v", name, err)
	}
	return checkReply(name, raw)
}

// callError makes a call that must fail with the error named want; the
// error's parameters are type-checked and returned.
func callError(c *varlink.Connection, name string, params interface{}, want string) map[string]interface{} {
	called[name] = true
	var raw json.RawMessage
	err := c.Call(ctx, name, params, &raw)
	ve := asError(err)
	if ve == nil {
		fail("%s: expected %s, got %v (reply %s)", name, want, err, raw)
	}
	if ve.Name != want {
		fail("%s: expected %s, got %s", name, want, ve.Name)
	}
	return checkError(ve)
}

// raw sends one message on a socket of its own and returns the reply,
// for checking a reply's exact bytes beyond what the library shows.
func raw(sock, msg string) string {
	c, err := net.Dial("unix", sock)
	if err != nil {
		fail("connect %s: %v", sock, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(append([]byte(msg), 0)); err != nil {
		fail("write: %v", err)
	}
	var buf []byte
	b := make([]byte, 4096)
	for !bytes.Contains(buf, []byte{0}) {
		n, err := c.Read(b)
		if err != nil {
			fail("read: %v", err)
		}
		buf = append(buf, b[:n]...)
	}
	return string(buf[:bytes.IndexByte(buf, 0)])
}

func str(v interface{}) string {
	s, _ := v.(string)
	return s
}

func main() {
	if len(os.Args) != 3 && len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: varlink-interop SOCKET COLLECTION [FILE]")
		os.Exit(2)
	}
	sock, coll := os.Args[1], os.Args[2]
	var cancel context.CancelFunc
	ctx, cancel = context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	c, err := varlink.NewConnection(ctx, "unix:"+sock)
	if err != nil {
		fail("connect: %v", err)
	}
	defer c.Close()

	// GetInfo without input: varlink/go sends "parameters": null.
	var vendor, product, version, url string
	var names []string
	if err := c.GetInfo(ctx, &vendor, &product, &version, &url, &names); err != nil {
		fail("GetInfo: %v", err)
	}
	ok("GetInfo: %s %s %s, interfaces %v", vendor, product, version, names)
	for _, n := range names {
		text, err := c.GetInterfaceDescription(ctx, n)
		if err != nil {
			fail("GetInterfaceDescription %s: %v", n, err)
		}
		parsed, err := idl.New(text)
		if err != nil {
			fail("interface %s does not parse with varlink/go's idl: %v", n, err)
		}
		if parsed.Name != n {
			fail("interface %s names itself %s", n, parsed.Name)
		}
		ifaces[n] = parsed
		ok("interface %s parses: %d types, %d methods, %d errors", n,
			len(parsed.Aliases), len(parsed.Methods), len(parsed.Errors))
	}
	for _, n := range []string{"org.varlink.service", "io.ferry"} {
		if ifaces[n] == nil {
			fail("GetInfo does not name %s", n)
		}
	}
	if len(os.Args) == 4 {
		text, err := os.ReadFile(os.Args[3])
		if err != nil {
			fail("%v", err)
		}
		if _, err := idl.New(string(text)); err != nil {
			fail("%s does not parse with varlink/go's idl: %v", os.Args[3], err)
		}
		if string(text) != ifaces["io.ferry"].Description {
			fail("%s is not the text ferryd serves as io.ferry", os.Args[3])
		}
		ok("%s parses and is the text served", os.Args[3])
	}
	// The same calls again, replies type-checked against what was parsed.
	info := call(c, "org.varlink.service.GetInfo", nil)
	call(c, "org.varlink.service.GetInterfaceDescription",
		map[string]interface{}{"interface": "io.ferry"})
	callError(c, "org.varlink.service.GetInterfaceDescription",
		map[string]interface{}{"interface": "io.nope"},
		"org.varlink.service.InterfaceNotFound")
	ok("GetInfo and GetInterfaceDescription replies type-check (%v)", info["interfaces"])

	doc := func(r map[string]interface{}) map[string]interface{} {
		d, _ := r["doc"].(map[string]interface{})
		return d
	}
	body := map[string]interface{}{
		"title": "from Go", "n": []interface{}{1, 2.5, map[string]interface{}{"k": nil}},
		"nested": map[string]interface{}{"deep": true},
	}
	put := call(c, "io.ferry.Put", map[string]interface{}{
		"collection": coll, "id": "g1", "body": body})
	if doc(put)["rev"] != json.Number("1") {
		fail("Put: rev %v, want 1", doc(put)["rev"])
	}
	got := call(c, "io.ferry.Get", map[string]interface{}{"collection": coll, "id": "g1"})
	want, _ := json.Marshal(body)
	have, _ := json.Marshal(doc(got)["body"])
	wantv, _ := decode(want)
	havev, _ := decode(have)
	if fmt.Sprint(wantv) != fmt.Sprint(havev) {
		fail("Get: body %s, want %s", have, want)
	}
	call(c, "io.ferry.Patch", map[string]interface{}{
		"collection": coll, "id": "g1", "patch": map[string]interface{}{"title": "patched"},
		"if_rev": 1})
	list := call(c, "io.ferry.List", map[string]interface{}{"collection": coll, "limit": 10})
	if docs, _ := list["docs"].([]interface{}); len(docs) == 0 {
		fail("List: no documents")
	}
	callError(c, "io.ferry.Get", map[string]interface{}{"collection": coll, "id": "none"},
		"io.ferry.NotFound")
	callError(c, "io.ferry.Put", map[string]interface{}{
		"collection": coll, "id": "g1", "body": map[string]interface{}{}, "if_rev": 99},
		"io.ferry.RevMismatch")
	callError(c, "io.ferry.Put", map[string]interface{}{
		"collection": "no/slash", "id": "g1", "body": map[string]interface{}{}},
		"io.ferry.InvalidArgument")
	ok("Put, Get, Patch, List and their errors type-check")

	// Watch on a second connection, fed by a Put on the first.
	w, err := varlink.NewConnection(ctx, "unix:"+sock)
	if err != nil {
		fail("connect: %v", err)
	}
	called["io.ferry.Watch"] = true
	recv, err := w.Send(ctx, "io.ferry.Watch",
		map[string]interface{}{"collections": []string{coll}}, varlink.More)
	if err != nil {
		fail("Watch: %v", err)
	}
	var first json.RawMessage
	flags, err := recv(ctx, &first)
	if err != nil || flags&varlink.Continues == 0 {
		fail("Watch: first reply %s, flags %d, %v", first, flags, err)
	}
	if r := checkReply("io.ferry.Watch", first); r["ready"] != true {
		fail("Watch: first reply %s is not ready", first)
	}
	call(c, "io.ferry.Put", map[string]interface{}{
		"collection": coll, "id": "watched", "body": map[string]interface{}{"w": 1}})
	var second json.RawMessage
	if flags, err = recv(ctx, &second); err != nil || flags&varlink.Continues == 0 {
		fail("Watch: second reply %s, flags %d, %v", second, flags, err)
	}
	ev, _ := checkReply("io.ferry.Watch", second)["event"].(map[string]interface{})
	if str(ev["id"]) != "watched" || str(ev["origin"]) != "local" {
		fail("Watch: event %s is not the Put of another connection", second)
	}
	w.Close()
	ok("Watch (more) streams, its replies type-check, and it saw %s", second)

	st := call(c, "io.ferry.Status", nil)
	status, _ := st["status"].(map[string]interface{})
	if str(status["remote"]) == "" {
		fail("Status: no remote; the test must start ferryd with one")
	}
	call(c, "io.ferry.Sync", map[string]interface{}{"wait": true})
	hist := call(c, "io.ferry.History", map[string]interface{}{"collection": coll, "id": "g1"})
	if entries, _ := hist["entries"].([]interface{}); len(entries) == 0 {
		fail("History: no entries after Sync")
	}
	ok("Status, Sync (wait) and History type-check")

	before := str(status["device"])
	rot := call(c, "io.ferry.RotateKey", nil)
	if str(rot["old_key"]) != before || str(rot["key"]) == "" || str(rot["key"]) == before {
		fail("RotateKey: %v does not replace the device key %s", rot, before)
	}
	ok("RotateKey type-checks and replaces the device key")

	cf := call(c, "io.ferry.Conflicts", map[string]interface{}{})
	conflicts, _ := cf["conflicts"].([]interface{})
	if len(conflicts) == 0 {
		fail("Conflicts: none; the test must make one")
	}
	id := conflicts[0].(map[string]interface{})["conflict_id"]
	call(c, "io.ferry.GetConflict", map[string]interface{}{"conflict_id": id})
	call(c, "io.ferry.Resolve", map[string]interface{}{"conflict_id": id, "strategy": "mine"})
	callError(c, "io.ferry.GetConflict", map[string]interface{}{"conflict_id": id},
		"io.ferry.NotFound")
	call(c, "io.ferry.Parked", nil)
	call(c, "io.ferry.Delete", map[string]interface{}{"collection": coll, "id": "watched"})
	ok("Conflicts, GetConflict, Resolve, Parked and Delete type-check")

	call(c, "io.ferry.SetPresence", map[string]interface{}{"collection": coll,
		"id": "g1", "state": map[string]interface{}{"user": "interop"}})
	who := call(c, "io.ferry.Who", map[string]interface{}{"collection": coll})
	if present, _ := who["present"].([]interface{}); len(present) != 1 {
		fail("Who: %v, want this connection's one entry", who)
	}
	callError(c, "io.ferry.SetPresence", map[string]interface{}{"collection": coll,
		"state": map[string]interface{}{"s": strings.Repeat("x", 2000)}},
		"io.ferry.InvalidArgument")
	call(c, "io.ferry.SetPresence", map[string]interface{}{"collection": coll, "id": "g1"})
	ok("SetPresence, Who and their errors type-check")

	// Ill-typed parameters: the library sees InvalidParameter{parameter}.
	called["io.ferry.Put"] = true
	err = c.Call(ctx, "io.ferry.Put", map[string]interface{}{
		"collection": coll, "id": "bad", "body": "not an object"}, nil)
	var ip *varlink.InvalidParameter
	if !errors.As(err, &ip) || ip.Parameter != "body" {
		fail("Put with a string body: %v (%#v), want InvalidParameter body", err, err)
	}
	err = c.Call(ctx, "io.ferry.List", map[string]interface{}{
		"collection": coll, "limit": "ten"}, nil)
	if !errors.As(err, &ip) || ip.Parameter != "limit" {
		fail("List with a string limit: %v, want InvalidParameter limit", err)
	}
	// ...and on the wire it carries nothing the interface does not declare.
	reply := raw(sock, `{"method":"io.ferry.Get","parameters":{"collection":1,"id":"x"}}`)
	v, _ := decode([]byte(reply))
	m, _ := v.(map[string]interface{})
	e := &varlink.Error{Name: str(m["error"])}
	if p, ok := m["parameters"].(map[string]interface{}); ok {
		b, _ := json.Marshal(p)
		rm := json.RawMessage(b)
		e.Parameters = &rm
	}
	if e.Name != "org.varlink.service.InvalidParameter" {
		fail("Get with a number for collection: %s", reply)
	}
	if p := checkError(e); p["parameter"] != "collection" {
		fail("Get with a number for collection: %s", reply)
	}
	ok("ill-typed parameters are InvalidParameter{parameter}: %s", reply)

	missing := []string{}
	for _, m := range ifaces["io.ferry"].Methods {
		if !called["io.ferry."+m.Name] {
			missing = append(missing, m.Name)
		}
	}
	if len(missing) > 0 {
		fail("methods of io.ferry not called here: %v", missing)
	}
	ok("every method of io.ferry was called (%d)", len(ifaces["io.ferry"].Methods))
}
