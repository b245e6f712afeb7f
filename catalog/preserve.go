package catalog

import "time"

// Self-preservation. When an agent sees many members fail at once, the
// likelier story is that it was cut off, not that they all died: it then
// keeps serving the instances of the members that failed, from its last
// copy, instead of hiding them. It ends when most of them answer again or
// after a maximum time, and then serves what the failure detector says.
// A member that leaves gracefully is never kept.

// PreserveConfig configures self-preservation.
type PreserveConfig struct {
	// Enabled turns it on.
	Enabled bool
	// Share: more than this share of the members (this agent included)
	// failing within Window starts it. Default 0.5.
	Share float64
	// MinMembers: clusters smaller than this never start it. Default 3.
	MinMembers int
	// Window is the failure-detection window: failures further apart do
	// not count together. Default 30 s.
	Window time.Duration
	// Max ends it this long after it started. Default 10 min.
	Max time.Duration
}

// DefaultPreserveConfig is self-preservation as an agent runs it unless
// configured otherwise.
func DefaultPreserveConfig() PreserveConfig {
	return PreserveConfig{Enabled: true, Share: 0.5, MinMembers: 3, Window: 30 * time.Second, Max: 10 * time.Minute}
}

// Preservation is the state of self-preservation.
type Preservation struct {
	Active bool
	Since  time.Time // when it started
	Nodes  int       // failed members whose instances are kept
	// Hidden: when it last ended, how many members kept were still
	// failed, and so hidden.
	Hidden int
}

type preserve struct {
	cfg    PreserveConfig
	recent []failure // members that failed within the window, oldest first
	active bool
	since  time.Time
	// returned is when a member kept last answered again.
	returned time.Time
	kept     map[string]bool
	hidden   int // see Preservation.Hidden
}

type failure struct {
	node string
	at   time.Time
}

// SetPreserve configures self-preservation; turning it off ends it.
func (c *Catalog) SetPreserve(cfg PreserveConfig, now time.Time) {
	d := DefaultPreserveConfig()
	if cfg.Share <= 0 || cfg.Share >= 1 {
		cfg.Share = d.Share
	}
	if cfg.MinMembers <= 0 {
		cfg.MinMembers = d.MinMembers
	}
	if cfg.Window <= 0 {
		cfg.Window = d.Window
	}
	if cfg.Max <= 0 {
		cfg.Max = d.Max
	}
	c.pres.cfg = cfg
	if !cfg.Enabled {
		c.endPreserve()
	}
}

// Preservation reports the state of self-preservation.
func (c *Catalog) Preservation() Preservation {
	return Preservation{Active: c.pres.active, Since: c.pres.since, Nodes: len(c.pres.kept), Hidden: c.pres.hidden}
}

// members counts the cluster as self-preservation judges it: this agent,
// the members served or kept, and those that failed within the window.
func (c *Catalog) members() int {
	p := &c.pres
	recent := make(map[string]bool, len(p.recent))
	for _, f := range p.recent {
		recent[f.node] = true
	}
	n := 1 + len(recent)
	for name, nd := range c.nodes {
		if name != c.local && !recent[name] && (nd.Status == StatusAlive || nd.Status == StatusSuspect || p.kept[name]) {
			n++
		}
	}
	return n
}

// notePreserve updates self-preservation for a node whose status changes
// from old's to n's, before the node is stored; it says whether n is to
// be kept (served though failed).
func (c *Catalog) notePreserve(old *Node, n *Node, now time.Time) bool {
	p := &c.pres
	if !p.cfg.Enabled || n.Name == c.local {
		return false
	}
	cut := now.Add(-p.cfg.Window)
	i := 0
	for i < len(p.recent) && p.recent[i].at.Before(cut) {
		i++
	}
	p.recent = p.recent[i:]
	was := old != nil && old.Serving() && !old.Preserved
	switch n.Status {
	case StatusDead:
		if was {
			p.recent = append(p.recent, failure{n.Name, now})
		}
	case StatusAlive, StatusSuspect:
		if p.kept[n.Name] {
			delete(p.kept, n.Name)
			p.returned = now
		}
		p.dropRecent(n.Name)
	default: // left, or unknown: never kept
		delete(p.kept, n.Name)
		p.dropRecent(n.Name)
	}
	if !p.active && n.Status == StatusDead && was {
		if m := c.members(); m >= p.cfg.MinMembers && float64(len(p.recent)) > p.cfg.Share*float64(m) {
			p.active, p.since, p.returned = true, now, time.Time{}
			p.kept = map[string]bool{}
			// Every member that failed within the window is kept: those
			// before this one were hidden, and are served again.
			for _, f := range p.recent {
				if f.node != n.Name {
					c.keep(f.node)
				}
			}
		}
	}
	if p.active && n.Status == StatusDead && (was || p.kept[n.Name]) {
		p.kept[n.Name] = true
		return true
	}
	if p.active && len(p.kept) == 0 {
		c.endPreserve() // every member kept answered again
	}
	return false
}

// TickPreserve ends self-preservation once it has lasted its maximum, or
// once members have answered again and, a window after the last of them,
// those still failed would not have started it; the agent calls it every
// second or so.
func (c *Catalog) TickPreserve(now time.Time) {
	p := &c.pres
	if !p.active {
		return
	}
	settled := !p.returned.IsZero() && now.Sub(p.returned) >= p.cfg.Window &&
		float64(len(p.kept)) <= p.cfg.Share*float64(c.members())
	if now.Sub(p.since) >= p.cfg.Max || settled {
		c.endPreserve()
	}
}

func (p *preserve) dropRecent(node string) {
	for i, f := range p.recent {
		if f.node == node {
			p.recent = append(p.recent[:i], p.recent[i+1:]...)
			return
		}
	}
}

// keep marks a failed node as kept and serves its instances again.
func (c *Catalog) keep(name string) {
	n := c.nodes[name]
	if n == nil || n.Status != StatusDead || n.Preserved {
		return
	}
	c.pres.kept[name] = true
	c.setPreserved(n, true)
}

// endPreserve ends self-preservation: the members kept are hidden, as
// the failure detector says.
func (c *Catalog) endPreserve() {
	p := &c.pres
	p.hidden = 0
	for name := range p.kept {
		if n := c.nodes[name]; n != nil && n.Preserved {
			c.setPreserved(n, false)
			p.hidden++
		}
	}
	p.active, p.kept, p.recent, p.returned = false, nil, nil, time.Time{}
}

// setPreserved changes whether a failed node is served, and moves the
// indexes of its services.
func (c *Catalog) setPreserved(n *Node, on bool) {
	nn := *n
	nn.Preserved = on
	c.nodes[n.Name] = &nn
	c.resum(n.Name)
	var touched []string
	if o := c.origins[n.Name]; o != nil {
		for k, r := range o.entries {
			if k.kind == KindService && !r.Deleted {
				touched = append(touched, r.Service.Name)
			}
		}
	}
	c.bump(touched...)
	nn.ModifyIndex = c.index
}
