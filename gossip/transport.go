package gossip

import (
	"bytes"
	"fmt"
	"log"
	"os"
	"strings"
	"sync"

	"github.com/hashicorp/memberlist"
)

// compactTransport hands memberlist each received packet in a buffer of
// its own size. memberlist's NetTransport reads every UDP packet into a
// fresh 64 KiB buffer and passes it on whole; memberlist queues the
// messages of unencrypted packets as slices of that buffer until its
// handler gets to them, so each queued message of ~100 bytes would keep 64
// KiB alive — a gigabyte with Shoal's queue of 16,384 full under a burst.
type compactTransport struct {
	memberlist.NodeAwareTransport
	packets chan *memberlist.Packet
	done    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

func newCompactTransport(t memberlist.NodeAwareTransport) *compactTransport {
	c := &compactTransport{
		NodeAwareTransport: t,
		packets:            make(chan *memberlist.Packet),
		done:               make(chan struct{}),
		stopped:            make(chan struct{}),
	}
	go c.forward()
	return c
}

func (c *compactTransport) forward() {
	defer close(c.stopped)
	in := c.NodeAwareTransport.PacketCh()
	for {
		select {
		case p := <-in:
			p.Buf = bytes.Clone(p.Buf)
			select {
			case c.packets <- p:
			case <-c.done:
				return
			}
		case <-c.done:
			return
		}
	}
}

// PacketCh delivers the received packets, each in a buffer of its size.
func (c *compactTransport) PacketCh() <-chan *memberlist.Packet { return c.packets }

// Shutdown stops the transport, then the goroutine that copies for it.
func (c *compactTransport) Shutdown() error {
	err := c.NodeAwareTransport.Shutdown()
	c.once.Do(func() { close(c.done) })
	<-c.stopped
	return err
}

// transportFor returns mc's transport wrapped in a compactTransport,
// creating memberlist's NetTransport first as memberlist would (with a
// few tries for a dynamic port, whose UDP twin may be taken) when mc has
// none.
func transportFor(mc *memberlist.Config) (*compactTransport, error) {
	if mc.Transport != nil {
		t, ok := mc.Transport.(memberlist.NodeAwareTransport)
		if !ok {
			return nil, fmt.Errorf("transport %T is not a memberlist.NodeAwareTransport", mc.Transport)
		}
		return newCompactTransport(t), nil
	}
	logger := mc.Logger
	if logger == nil {
		out := mc.LogOutput
		if out == nil {
			out = os.Stderr
		}
		logger = log.New(out, "", log.LstdFlags)
	}
	nc := &memberlist.NetTransportConfig{BindAddrs: []string{mc.BindAddr}, BindPort: mc.BindPort, Logger: logger}
	tries := 1
	if mc.BindPort == 0 {
		tries = 10
	}
	var nt *memberlist.NetTransport
	var err error
	for range tries {
		if nt, err = memberlist.NewNetTransport(nc); err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("gossip sockets: %w", err)
	}
	if mc.BindPort == 0 {
		mc.BindPort = nt.GetAutoBindPort()
		mc.AdvertisePort = mc.BindPort
	}
	return newCompactTransport(nt), nil
}
