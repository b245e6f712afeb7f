package catalog

import (
	"errors"
	"strings"
	"testing"
)

func chk(id, serviceID string, h Health) Check {
	return Check{ID: id, Name: "check " + id, ServiceID: serviceID, Type: "ttl", Status: h}
}

func mustPutCheck(t testing.TB, c *Catalog, ck Check) Entry {
	t.Helper()
	e, changed, err := c.PutCheck(ck, t0)
	if err != nil {
		t.Fatalf("PutCheck(%+v): %v", ck, err)
	}
	if !changed {
		t.Fatalf("PutCheck(%+v) changed nothing", ck)
	}
	checkConsistency(t, c)
	return e
}

func statusOf(t testing.TB, c *Catalog, name, id string) (Health, []string) {
	t.Helper()
	for _, in := range c.Instances(name) {
		if in.Service.ID == id {
			var ids []string
			for _, ck := range in.Checks {
				ids = append(ids, ck.Check.ID)
			}
			return in.Status, ids
		}
	}
	t.Fatalf("no instance %s/%s", name, id)
	return 0, nil
}

// An instance's status is the worst of its own checks and its node's;
// another instance's checks do not count.
func TestInstanceStatusIsWorstOfItsChecks(t *testing.T) {
	a := New("a", 1)
	mustPut(t, a, svc("web1", "web"), t0)
	mustPut(t, a, svc("web2", "web"), t0)
	if h, ids := statusOf(t, a, "web", "web1"); h != HealthPassing || ids != nil {
		t.Fatalf("no checks: %v %v, want passing", h, ids)
	}
	mustPutCheck(t, a, chk("c1", "web1", HealthPassing))
	mustPutCheck(t, a, chk("c2", "web1", HealthWarning))
	mustPutCheck(t, a, chk("c3", "web2", HealthCritical))
	if h, ids := statusOf(t, a, "web", "web1"); h != HealthWarning || strings.Join(ids, ",") != "c1,c2" {
		t.Fatalf("web1: %v %v, want warning with c1,c2", h, ids)
	}
	if h, _ := statusOf(t, a, "web", "web2"); h != HealthCritical {
		t.Fatalf("web2: %v, want critical", h)
	}
	// A node check counts for every instance of the node, listed first.
	idx := a.ServiceIndex("web")
	mustPutCheck(t, a, chk(NodeMaintenanceID, "", HealthCritical))
	if a.ServiceIndex("web") == idx {
		t.Fatal("a node check did not move the index of the node's services")
	}
	if h, ids := statusOf(t, a, "web", "web1"); h != HealthCritical || ids[0] != NodeMaintenanceID {
		t.Fatalf("web1 under node maintenance: %v %v", h, ids)
	}
	if _, ok := a.DeleteCheck(NodeMaintenanceID, t0); !ok {
		t.Fatal("DeleteCheck found nothing")
	}
	checkConsistency(t, a)
	if h, _ := statusOf(t, a, "web", "web1"); h != HealthWarning {
		t.Fatalf("after maintenance: %v, want warning", h)
	}
	// An unchanged state is no change at all.
	idx = a.Index()
	if _, changed, _ := a.PutCheck(chk("c1", "web1", HealthPassing), t0); changed || a.Index() != idx {
		t.Fatal("an unchanged check state changed the catalog")
	}
}

// Check states travel like services: a remote catalog shows them, a dead
// node shows none, and a check tombstone removes one.
func TestCheckStatesMergeAndHide(t *testing.T) {
	a, b := New("a", 1), New("b", 1)
	setNode(b, "a", StatusAlive, 1, t0)
	es := []Entry{mustPut(t, a, svc("web1", "web"), t0), mustPutCheck(t, a, chk("c1", "web1", HealthCritical)), mustPutCheck(t, a, chk("n1", "", HealthPassing))}
	applyAll(t, b, t0, es...)
	if h, _ := statusOf(t, b, "web", "web1"); h != HealthCritical {
		t.Fatalf("remote status %v, want critical", h)
	}
	if got := b.ServiceChecks("web"); len(got) != 1 || got[0].Check.ID != "c1" || got[0].ServiceName != "web" || got[0].Node != "a" {
		t.Fatalf("ServiceChecks = %+v", got)
	}
	if got := b.NodeChecks("a"); len(got) != 2 || got[0].Check.ID != "n1" || got[1].Check.ID != "c1" {
		t.Fatalf("NodeChecks = %+v", got)
	}
	if got := b.Checks(); len(got) != 2 {
		t.Fatalf("Checks = %+v", got)
	}
	applyAll(t, b, t0, mustPutCheck(t, a, chk("c1", "web1", HealthPassing)))
	if h, _ := statusOf(t, b, "web", "web1"); h != HealthPassing {
		t.Fatalf("remote status after pass %v", h)
	}
	// An older state arriving late loses.
	applyAll(t, b, t0, es[1])
	if h, _ := statusOf(t, b, "web", "web1"); h != HealthPassing {
		t.Fatalf("an older check state won: %v", h)
	}
	del, _ := a.DeleteCheck("c1", t0)
	applyAll(t, b, t0, del)
	if got := b.NodeChecks("a"); len(got) != 1 {
		t.Fatalf("NodeChecks after delete = %+v", got)
	}
	setNode(b, "a", StatusDead, 1, t0)
	if got := b.NodeChecks("a"); got != nil {
		t.Fatalf("a dead node shows checks: %+v", got)
	}
	if got := b.Checks(); len(got) != 0 {
		t.Fatalf("Checks shows a dead node's: %+v", got)
	}
}

// A node that missed a check's deletion until its tombstone was reaped
// drops the check when it catches up, as it does a service.
func TestCatchingUpDropsReapedChecks(t *testing.T) {
	a, b := New("a", 1), New("b", 1)
	setNode(b, "a", StatusAlive, 1, t0)
	applyAll(t, b, t0, mustPut(t, a, svc("web1", "web"), t0), mustPutCheck(t, a, chk("c1", "web1", HealthCritical)))
	a.DeleteCheck("c1", t0)
	a.Reap(t0.Add(2*tombTTL), tombTTL, nodeTTL)
	syncFrom(t, b, a, t0)
	if h, ids := statusOf(t, b, "web", "web1"); h != HealthPassing || ids != nil {
		t.Fatalf("after catching up: %v %v", h, ids)
	}
}

func TestCheckValidate(t *testing.T) {
	good := chk("c", "web1", HealthPassing)
	cases := []struct {
		field string
		mod   func(*Check)
	}{
		{"CheckID", func(c *Check) { c.ID = "" }},
		{"CheckID", func(c *Check) { c.ID = "a/b" }},
		{"CheckID", func(c *Check) { c.ID = strings.Repeat("x", MaxCheckIDLen+1) }},
		{"Name", func(c *Check) { c.Name = "" }},
		{"Name", func(c *Check) { c.Name = "bad\x00" }},
		{"ServiceID", func(c *Check) { c.ServiceID = "a b" }},
		{"Status", func(c *Check) { c.Status = 0 }},
		{"Status", func(c *Check) { c.Status = 9 }},
		{"Notes", func(c *Check) { c.Notes = strings.Repeat("n", MaxNotesLen+1) }},
		{"Output", func(c *Check) { c.Output = strings.Repeat("o", MaxOutputHead+1) }},
		{"Output", func(c *Check) { c.Output = "\xff" }},
	}
	for _, tc := range cases {
		c := good
		tc.mod(&c)
		err := c.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%+v: got %v, want an error naming %s", c, err, tc.field)
		}
	}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	a := New("a", 1)
	bad := good
	bad.Status = 0
	if _, _, err := a.PutCheck(bad, t0); err == nil || len(a.LocalChecks()) != 0 {
		t.Fatal("an invalid check was stored")
	}
}

func TestTruncateOutputKeepsUTF8(t *testing.T) {
	s := strings.Repeat("é", 150) // 300 bytes
	got := TruncateOutput(s, MaxOutputHead)
	if len(got) > MaxOutputHead || !strings.HasPrefix(s, got) || len(got) < MaxOutputHead-1 {
		t.Fatalf("cut to %d bytes", len(got))
	}
	if TruncateOutput("short", 10) != "short" {
		t.Fatal("a short output was changed")
	}
}

func TestParseHealth(t *testing.T) {
	for _, h := range []Health{HealthPassing, HealthWarning, HealthCritical} {
		if got, err := ParseHealth(h.String()); err != nil || got != h {
			t.Errorf("ParseHealth(%q) = %v, %v", h, got, err)
		}
	}
	if _, err := ParseHealth("ok"); err == nil {
		t.Error("ParseHealth accepted ok")
	}
	if Worse(HealthWarning, HealthCritical) != HealthCritical || Worse(0, HealthPassing) != HealthPassing {
		t.Error("Worse is wrong")
	}
}
