package catalog

import "strings"

// Names are case-insensitive in DNS (RFC 4343), and resolvers may change
// the case of a query on its way (0x20 randomisation), so the DNS
// interface looks names up ignoring case. The exact spelling wins; among
// several spellings of one name that differ in case only, the smallest in
// byte order does, so that every query gets the same answer.

// FoldServiceName returns the name under which the catalog holds
// instances of the service called name, ignoring case, and whether
// there is one. The instances may all be hidden (their nodes dead).
func (c *Catalog) FoldServiceName(name string) (string, bool) {
	if len(c.byName[name]) > 0 {
		return name, true
	}
	best, found := "", false
	for n, m := range c.byName {
		if len(m) > 0 && strings.EqualFold(n, name) && (!found || n < best) {
			best, found = n, true
		}
	}
	return best, found
}

// FoldNodeName returns the name of the known node called name, ignoring
// case, and whether there is one.
func (c *Catalog) FoldNodeName(name string) (string, bool) {
	if c.nodes[name] != nil {
		return name, true
	}
	best, found := "", false
	for n := range c.nodes {
		if strings.EqualFold(n, name) && (!found || n < best) {
			best, found = n, true
		}
	}
	return best, found
}

// EachInstance calls fn for every served instance of the named service,
// in no particular order, with its node and its Status as Instances
// computes it (the worst of its node's checks and its own, passing when
// there are none). It is Instances without the checks' details and the
// sort, for hot paths that need neither (DNS answers are shuffled). s is
// the catalog's own: read only, and only during the call.
func (c *Catalog) EachInstance(name string, fn func(n Node, s *Service, status Health)) {
	for k, r := range c.byName[name] {
		if !c.visible(k.origin) {
			continue
		}
		status := HealthPassing
		if o := c.origins[k.origin]; o != nil {
			for _, id := range [2]string{"", k.id} {
				for _, ck := range o.checks[id] {
					status = Worse(status, ck.Check.Status)
				}
			}
		}
		fn(c.nodeOf(k.origin), &r.Service, status)
	}
}
