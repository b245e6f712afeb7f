package gossip

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// The gossip keyring, as Consul's: several keys installed, one primary
// (which encrypts what this agent sends; any installed key decrypts). An
// operator changes the keyring of every member at once: this agent sends
// the operation to each member it holds alive, each applies it to its own
// keyring (saving it first, see KeyringConfig.Save) and answers with its
// keys or its error, and the caller gets the results by node.
//
// A keyring operation is only taken from a member when this agent refuses
// plain gossip (memberlist's GossipVerifyIncoming): then the request was
// encrypted with an installed key, and whoever holds one is trusted with
// the cluster, as in Consul. Requests carry a Lamport time and an ID; an
// agent refuses one it has taken before or one far behind the newest it
// has seen, so a recorded request cannot be played back to undo a
// rotation later.

// KeyOp is a keyring operation.
type KeyOp uint8

// Keyring operations.
const (
	KeyList    KeyOp = 1
	KeyInstall KeyOp = 2
	KeyUse     KeyOp = 3
	KeyRemove  KeyOp = 4
)

func (op KeyOp) String() string {
	switch op {
	case KeyList:
		return "list"
	case KeyInstall:
		return "install"
	case KeyUse:
		return "use"
	case KeyRemove:
		return "remove"
	}
	return fmt.Sprintf("keyop(%d)", uint8(op))
}

// Keyring limits and timing.
const (
	// maxKeys is the most keys an answer lists.
	maxKeys = 64
	// keyWindow: a request more than this many Lamport ticks behind the
	// newest an agent has seen is refused as stale.
	keyWindow = 128
	// KeyringTimeout is how long an operation waits for every member.
	KeyringTimeout = 10 * time.Second
	// keyFanout is how many members are sent a request at once.
	keyFanout = 32
	// maxSeen bounds the requests remembered within the window.
	maxSeen = 4096
)

// ErrKeyringDisabled is returned, and answered, by an agent without
// gossip encryption.
var ErrKeyringDisabled = errors.New("gossip encryption is not enabled on this agent")

// KeyringResult is a keyring operation's outcome across the cluster, in
// the shape of Consul's /v1/operator/keyring: how many of the nodes asked
// hold each key and use each as primary, and the error of each node that
// failed or did not answer.
type KeyringResult struct {
	NumNodes    int
	Keys        map[string]int // base64 key: nodes that hold it
	PrimaryKeys map[string]int // base64 key: nodes whose primary it is
	Messages    map[string]string
}

// keyReq and keyResp are the wire records of an operation.
type keyReq struct {
	ID    uint64
	LTime uint64
	Op    KeyOp
	Key   []byte
}

type keyResp struct {
	ID    uint64
	LTime uint64
	Err   string
	Keys  [][]byte // primary first
}

// keyring is the gossip layer's side of the keyring: memberlist's, the
// function that saves it, and the replay guard.
type keyring struct {
	mu      sync.Mutex // serialises changes, Save then memberlist
	clock   uint64     // newest Lamport time seen
	seen    map[keySeen]bool
	pending map[uint64]*keyCall
}

type keySeen struct {
	from  string
	id    uint64
	ltime uint64
}

// keyCall collects the answers to one operation this agent started.
type keyCall struct {
	want    map[string]bool // members not yet answered
	answers map[string]keyResp
	done    chan struct{}
}

// checkKey validates a key's size (AES-128, -192 or -256).
func checkKey(k []byte) error {
	switch len(k) {
	case 16, 24, 32:
		return nil
	}
	return fmt.Errorf("key is %d bytes; it must be 16, 24 or 32 bytes (base64)", len(k))
}

// applyKey applies an operation to this agent's keyring, saving the
// result before memberlist uses it, and returns the keys after it.
func (g *Gossip) applyKey(op KeyOp, key []byte) ([][]byte, error) {
	if g.kr == nil {
		return nil, ErrKeyringDisabled
	}
	g.keys.mu.Lock()
	defer g.keys.mu.Unlock()
	keys := g.kr.GetKeys() // memberlist lists the primary first
	has := slices.ContainsFunc(keys, func(k []byte) bool { return bytes.Equal(k, key) })
	var next [][]byte
	switch op {
	case KeyList:
		return keys, nil
	case KeyInstall:
		if err := checkKey(key); err != nil {
			return keys, err
		}
		if has {
			return keys, nil
		}
		next = append(slices.Clone(keys), key)
	case KeyUse:
		if !has {
			return keys, errors.New("the key is not installed")
		}
		if bytes.Equal(keys[0], key) {
			return keys, nil
		}
		next = [][]byte{key}
		for _, k := range keys {
			if !bytes.Equal(k, key) {
				next = append(next, k)
			}
		}
	case KeyRemove:
		if len(keys) > 0 && bytes.Equal(keys[0], key) {
			return keys, errors.New("removing the primary key is not allowed")
		}
		if !has {
			return keys, nil
		}
		next = slices.DeleteFunc(slices.Clone(keys), func(k []byte) bool { return bytes.Equal(k, key) })
	default:
		return keys, fmt.Errorf("unknown keyring operation %d", op)
	}
	if g.saveKeys != nil {
		if err := g.saveKeys(next); err != nil {
			return keys, fmt.Errorf("keyring unchanged: %w", err)
		}
	}
	var err error
	switch op {
	case KeyInstall:
		err = g.kr.AddKey(key)
	case KeyUse:
		err = g.kr.UseKey(key)
	case KeyRemove:
		err = g.kr.RemoveKey(key)
	}
	if err != nil {
		return g.kr.GetKeys(), fmt.Errorf("keyring: %w", err)
	}
	g.log.Info("gossip keyring changed", "op", op.String(), "keys", len(next))
	return g.kr.GetKeys(), nil
}

// Keyring runs an operation on every member held alive and on this agent,
// and returns their results. key is ignored for KeyList. It fails only
// when the operation could not start; a member's failure or silence is in
// the result's Messages.
func (g *Gossip) Keyring(ctx context.Context, op KeyOp, key []byte) (KeyringResult, error) {
	res := KeyringResult{Keys: map[string]int{}, PrimaryKeys: map[string]int{}, Messages: map[string]string{}}
	if g.kr == nil {
		return res, ErrKeyringDisabled
	}
	if op != KeyList {
		if err := checkKey(key); err != nil {
			return res, err
		}
	}
	ml := g.live()
	if ml == nil {
		return res, errors.New("gossip is not running")
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return res, fmt.Errorf("keyring request id: %w", err)
	}
	g.mu.Lock()
	peers := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		peers = append(peers, m)
	}
	g.mu.Unlock()
	sort.Slice(peers, func(i, j int) bool { return peers[i].node.Name < peers[j].node.Name })

	call := &keyCall{want: map[string]bool{}, answers: map[string]keyResp{}, done: make(chan struct{})}
	for _, p := range peers {
		call.want[p.node.Name] = true
	}
	if len(call.want) == 0 {
		close(call.done)
	}
	g.keys.mu.Lock()
	g.keys.clock++
	req := keyReq{ID: binary.BigEndian.Uint64(id[:]), LTime: g.keys.clock, Op: op, Key: key}
	g.keys.pending[req.ID] = call
	g.keys.mu.Unlock()
	defer func() {
		g.keys.mu.Lock()
		delete(g.keys.pending, req.ID)
		g.keys.mu.Unlock()
	}()

	keys, err := g.applyKey(op, key)
	res.NumNodes = 1 + len(peers)
	tally(&res, g.name, keys, err)

	sem := make(chan struct{}, keyFanout)
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			b := newMessage(g.version(p), g.name)
			b.keyReq(req)
			g.stats.BytesOut.Add(uint64(b.len()))
			if err := ml.SendReliable(&p.node, b.b); err != nil {
				g.keyAnswer(p.node.Name, keyResp{ID: req.ID, Err: fmt.Sprintf("not reached: %v", err)})
			}
		}()
	}
	wait := time.NewTimer(KeyringTimeout)
	defer wait.Stop()
	select {
	case <-call.done:
	case <-wait.C:
	case <-ctx.Done():
	}
	wg.Wait()

	g.keys.mu.Lock()
	defer g.keys.mu.Unlock()
	for _, p := range peers {
		name := p.node.Name
		a, ok := call.answers[name]
		if !ok {
			res.Messages[name] = "no answer in time (down, or a Shoal version without keyring operations)"
			continue
		}
		var err error
		if a.Err != "" {
			err = errors.New(a.Err)
		}
		tally(&res, name, a.Keys, err)
	}
	return res, nil
}

// tally counts one node's answer in a result.
func tally(res *KeyringResult, node string, keys [][]byte, err error) {
	if err != nil {
		res.Messages[node] = err.Error()
		return
	}
	for i, k := range keys {
		s := base64.StdEncoding.EncodeToString(k)
		res.Keys[s]++
		if i == 0 {
			res.PrimaryKeys[s]++
		}
	}
}

// keyAnswer records a member's answer to an operation this agent started.
func (g *Gossip) keyAnswer(from string, a keyResp) {
	g.keys.mu.Lock()
	defer g.keys.mu.Unlock()
	if a.LTime > g.keys.clock {
		g.keys.clock = a.LTime
	}
	call := g.keys.pending[a.ID]
	if call == nil || !call.want[from] {
		return // not asked, or answered already
	}
	delete(call.want, from)
	call.answers[from] = a
	if len(call.want) == 0 {
		close(call.done)
	}
}

// keyRequest takes a member's keyring request and answers it.
func (g *Gossip) keyRequest(p *member, req keyReq) {
	resp := keyResp{ID: req.ID}
	if err := g.admitKeyReq(p.node.Name, req); err != nil {
		g.log.Warn("refused a keyring request", "from", p.node.Name, "op", req.Op.String(), "err", err)
		resp.Err = err.Error()
	} else {
		keys, err := g.applyKey(req.Op, req.Key)
		resp.Keys = keys
		if err != nil {
			resp.Err = err.Error()
			resp.Keys = nil
		}
	}
	g.keys.mu.Lock()
	resp.LTime = g.keys.clock
	g.keys.mu.Unlock()
	b := newMessage(g.version(p), g.name)
	b.keyResp(resp)
	g.sendReliable(p, b)
}

// admitKeyReq decides whether a request may be applied: only over
// verified encrypted gossip, once, and not far behind the newest seen.
func (g *Gossip) admitKeyReq(from string, req keyReq) error {
	if g.kr == nil {
		return ErrKeyringDisabled
	}
	if !g.verifyIncoming {
		return errors.New("this agent accepts plain gossip (encrypt_verify_incoming is false), so a keyring request may be forged: change its keyring after the rolling steps")
	}
	g.keys.mu.Lock()
	defer g.keys.mu.Unlock()
	if req.LTime+keyWindow <= g.keys.clock {
		return fmt.Errorf("stale keyring request (time %d, this agent has seen %d); retry", req.LTime, g.keys.clock)
	}
	k := keySeen{from: from, id: req.ID, ltime: req.LTime}
	if g.keys.seen[k] {
		return errors.New("keyring request already taken (a replay?)")
	}
	if len(g.keys.seen) >= maxSeen {
		return errors.New("too many keyring requests at once; retry")
	}
	g.keys.seen[k] = true
	if req.LTime > g.keys.clock {
		g.keys.clock = req.LTime
	}
	for s := range g.keys.seen {
		if s.ltime+keyWindow <= g.keys.clock {
			delete(g.keys.seen, s)
		}
	}
	return nil
}

// LocalKeyring is this agent's own keyring in a result of one node.
func (g *Gossip) LocalKeyring() (KeyringResult, error) {
	res := KeyringResult{NumNodes: 1, Keys: map[string]int{}, PrimaryKeys: map[string]int{}, Messages: map[string]string{}}
	if g.kr == nil {
		return res, ErrKeyringDisabled
	}
	tally(&res, g.name, g.kr.GetKeys(), nil)
	return res, nil
}
