package gossip

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/memberlist"
)

var (
	k1 = bytes.Repeat([]byte{1}, 32)
	k2 = bytes.Repeat([]byte{2}, 32)
	k3 = bytes.Repeat([]byte{3}, 16)
)

// keyGossip is a gossip layer with keyring k1, refusing plain gossip, that
// knows "peer" as a member; saved records what it saved.
func keyGossip(t *testing.T, verify bool) (g *Gossip, saved *[][][]byte) {
	t.Helper()
	kr, err := memberlist.NewKeyring(nil, k1)
	if err != nil {
		t.Fatal(err)
	}
	g = bareGossip("self")
	g.log = slog.New(slog.DiscardHandler)
	g.kr, g.verifyIncoming = kr, verify
	g.keys = keyring{seen: map[keySeen]bool{}, pending: map[uint64]*keyCall{}}
	g.members["peer"] = &member{node: memberlist.Node{Name: "peer"}}
	saved = new([][][]byte)
	g.saveKeys = func(keys [][]byte) error { *saved = append(*saved, keys); return nil }
	return g, saved
}

// request is a keyring request message from peer.
func request(r keyReq) []byte {
	b := newMessage(ProtocolMax, "peer")
	b.keyReq(r)
	return b.b
}

func keysOf(g *Gossip) string {
	var s []string
	for _, k := range g.kr.GetKeys() {
		s = append(s, string(k[:1])) // the keys differ in their first byte
	}
	return strings.Join(s, ",")
}

// A request taken once is not taken again: a recorded "use" played back
// after the operator moved on does not undo the move.
func TestKeyringRequestReplayIsRefused(t *testing.T) {
	g, _ := keyGossip(t, true)
	install := request(keyReq{ID: 1, LTime: 1, Op: KeyInstall, Key: k2})
	useK2 := request(keyReq{ID: 2, LTime: 2, Op: KeyUse, Key: k2})
	useK1 := request(keyReq{ID: 3, LTime: 3, Op: KeyUse, Key: k1})
	for _, m := range [][]byte{install, useK2, useK1} {
		g.handle(m, false)
	}
	if got := keysOf(g); got != "\x01,\x02" {
		t.Fatalf("keys after install, use k2, use k1: %q", got)
	}
	g.handle(useK2, false) // the replay
	if got := keysOf(g); got != "\x01,\x02" {
		t.Fatalf("a replayed use changed the primary key: %q", got)
	}
}

// A request far behind the newest this agent has seen is refused, even
// with an ID never seen (the ID set is pruned past the window).
func TestKeyringStaleRequestIsRefused(t *testing.T) {
	g, saved := keyGossip(t, true)
	g.handle(request(keyReq{ID: 1, LTime: 1000, Op: KeyList}), false)
	g.handle(request(keyReq{ID: 2, LTime: 1000 - keyWindow, Op: KeyInstall, Key: k2}), false)
	if got := keysOf(g); got != "\x01" || len(*saved) != 0 {
		t.Fatalf("a stale install was taken: keys %q, saved %d", got, len(*saved))
	}
	g.handle(request(keyReq{ID: 3, LTime: 1001 - keyWindow, Op: KeyInstall, Key: k2}), false)
	if got := keysOf(g); got != "\x01,\x02" {
		t.Fatalf("an install within the window was refused: %q", got)
	}
}

// An agent that still accepts plain gossip (the first two rolling steps
// of turning encryption on) cannot tell a forged request from a real
// one, so it takes none.
func TestKeyringRequestRefusedWhilePlainGossipIsAccepted(t *testing.T) {
	g, saved := keyGossip(t, false)
	g.handle(request(keyReq{ID: 1, LTime: 1, Op: KeyInstall, Key: k2}), false)
	if got := keysOf(g); got != "\x01" || len(*saved) != 0 {
		t.Fatalf("keys %q, saved %d", got, len(*saved))
	}
	if err := g.admitKeyReq("peer", keyReq{ID: 2, LTime: 2, Op: KeyList}); err == nil || !strings.Contains(err.Error(), "encrypt_verify_incoming") {
		t.Fatalf("admit: %v", err)
	}
}

// A request from a node that is not a member is dropped.
func TestKeyringRequestFromStrangerIsDropped(t *testing.T) {
	g, _ := keyGossip(t, true)
	b := newMessage(ProtocolMax, "stranger")
	b.keyReq(keyReq{ID: 1, LTime: 1, Op: KeyInstall, Key: k2})
	g.handle(b.b, false)
	if got := keysOf(g); got != "\x01" {
		t.Fatalf("a stranger installed a key: %q", got)
	}
}

// The keyring is saved before memberlist uses it: a save that fails
// leaves it as it was, and says so.
func TestKeyringSaveFailureChangesNothing(t *testing.T) {
	g, _ := keyGossip(t, true)
	g.saveKeys = func([][]byte) error { return errors.New("no space left on device") }
	keys, err := g.applyKey(KeyInstall, k2)
	if err == nil || !strings.Contains(err.Error(), "keyring unchanged: no space left on device") || len(keys) != 1 {
		t.Fatalf("install on a full disk: %v, %d keys", err, len(keys))
	}
	if got := keysOf(g); got != "\x01" {
		t.Fatalf("keys %q", got)
	}
}

// The rules of the operations: the primary key cannot be removed, only an
// installed key can become primary, installing twice and removing a key
// that is not there change nothing, and a key must be 16, 24 or 32 bytes.
func TestKeyringOperationRules(t *testing.T) {
	g, saved := keyGossip(t, true)
	if _, err := g.applyKey(KeyRemove, k1); err == nil || !strings.Contains(err.Error(), "primary") {
		t.Errorf("remove primary: %v", err)
	}
	if _, err := g.applyKey(KeyUse, k3); err == nil || !strings.Contains(err.Error(), "not installed") {
		t.Errorf("use a key not installed: %v", err)
	}
	if _, err := g.applyKey(KeyInstall, k1); err != nil {
		t.Errorf("install the primary again: %v", err)
	}
	if _, err := g.applyKey(KeyRemove, k3); err != nil {
		t.Errorf("remove a key not installed: %v", err)
	}
	if _, err := g.applyKey(KeyInstall, []byte("short")); err == nil {
		t.Error("a 5-byte key was installed")
	}
	if len(*saved) != 0 || keysOf(g) != "\x01" {
		t.Fatalf("saved %d times, keys %q", len(*saved), keysOf(g))
	}
	if _, err := g.applyKey(KeyInstall, k3); err != nil {
		t.Fatal(err)
	}
	if _, err := g.applyKey(KeyUse, k3); err != nil {
		t.Fatal(err)
	}
	if len(*saved) != 2 || len((*saved)[1]) != 2 || !bytes.Equal((*saved)[1][0], k3) {
		t.Fatalf("saved %v; want the primary first", *saved)
	}
}

// An answer counts only from a member that was asked, once: another
// member cannot answer in its name.
func TestKeyringAnswerOnlyFromTheNodeAsked(t *testing.T) {
	g, _ := keyGossip(t, true)
	g.members["other"] = &member{node: memberlist.Node{Name: "other"}}
	call := &keyCall{want: map[string]bool{"peer": true}, answers: map[string]keyResp{}, done: make(chan struct{})}
	g.keys.pending[7] = call
	b := newMessage(ProtocolMax, "other")
	b.keyResp(keyResp{ID: 7, Keys: [][]byte{k2}})
	g.handle(b.b, false)
	if len(call.answers) != 0 || !call.want["peer"] {
		t.Fatalf("an answer from a node not asked was taken: %v", call.answers)
	}
	b = newMessage(ProtocolMax, "peer")
	b.keyResp(keyResp{ID: 7, Keys: [][]byte{k1}})
	g.handle(b.b, false)
	select {
	case <-call.done:
	default:
		t.Fatal("the answer of the node asked did not complete the call")
	}
	b = newMessage(ProtocolMax, "peer")
	b.keyResp(keyResp{ID: 7, Keys: [][]byte{k2}})
	g.handle(b.b, false) // a second answer must not close done again
	if !bytes.Equal(call.answers["peer"].Keys[0], k1) {
		t.Fatalf("a second answer replaced the first: %v", call.answers)
	}
}
