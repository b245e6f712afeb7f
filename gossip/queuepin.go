package gossip

import (
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	"github.com/hashicorp/memberlist"
)

// memberlist v0.7.0's TransmitLimitedQueue resets its id counter whenever
// it is momentarily empty, so a broadcast queued afterwards can get the
// id of one still queued; with the same transmit count and length the
// two are equal in the queue's B-tree and the new one silently replaces
// the old, which is then never sent again nor finished
// (hashicorp/memberlist#263, open since 2022; also #322–#324). For
// memberlist's own messages (alive, suspect, dead) that loses, for
// instance, the refutation of a suspicion.
//
// Shoal does not use that queue for its own messages. For memberlist's,
// pinQueue keeps the queue from ever being empty: it queues one broadcast
// larger than any packet, which memberlist never sends (a broadcast is
// taken only if it fits the packet being filled) and whose length puts it
// first in the queue's order, so that pruning, which drops from the other
// end, reaches it last. The id counter then never resets.
//
// Grafana's fork of memberlist carries the fix, but is based on an older
// memberlist without v0.7.0's limits on message and decompression sizes;
// this keeps those.

// pinSize is larger than any packet memberlist fills (UDPBufferSize is
// 1,400 by default; 64 KiB is the most a UDP datagram holds).
const pinSize = 1 << 16

type pin struct{ msg []byte }

func (p *pin) Invalidates(memberlist.Broadcast) bool { return false }
func (p *pin) Message() []byte                       { return p.msg }
func (p *pin) Finished()                             {}
func (p *pin) UniqueBroadcast()                      {}

var _ memberlist.UniqueBroadcast = (*pin)(nil)

// pinQueue queues the pin in ml's broadcast queue, found by reflection
// (the queue is not exported); it fails, and changes nothing, if the
// queue is not where memberlist v0.7.0 keeps it.
func pinQueue(ml *memberlist.Memberlist) error {
	q, err := broadcastQueue(ml)
	if err != nil {
		return err
	}
	q.QueueBroadcast(&pin{msg: make([]byte, pinSize)})
	return nil
}

// broadcastQueue returns memberlist's own broadcast queue.
func broadcastQueue(ml *memberlist.Memberlist) (*memberlist.TransmitLimitedQueue, error) {
	v := reflect.ValueOf(ml).Elem().FieldByName("broadcasts")
	if !v.IsValid() {
		return nil, errors.New("memberlist has no field broadcasts")
	}
	if v.Type() != reflect.TypeFor[*memberlist.TransmitLimitedQueue]() {
		return nil, fmt.Errorf("memberlist's broadcasts is a %s", v.Type())
	}
	q := *(**memberlist.TransmitLimitedQueue)(unsafe.Pointer(v.UnsafeAddr()))
	if q == nil {
		return nil, errors.New("memberlist's broadcast queue is not set up")
	}
	return q, nil
}
