package catalog

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// validService is a service that passes Validate; each table case breaks
// one thing of it.
func validService() Service {
	return Service{
		ID:      "web-1",
		Name:    "web",
		Tags:    []string{"v1", "primary"},
		Address: "10.0.0.1",
		Port:    8080,
		Meta:    map[string]string{"env": "prod"},
		Weights: Weights{Passing: 1, Warning: 1},
	}
}

func metaOf(n int, value string) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("k%02d", i)] = value
	}
	return m
}

func tagsOf(n int, tag string) []string {
	t := make([]string, n)
	for i := range t {
		t[i] = tag
	}
	return t
}

// sizedService returns a valid-looking service whose size bound (with the
// longest origin) is exactly n bytes, n large enough.
func sizedService(n int) Service {
	s := Service{ID: "x", Name: "x", Port: 1, Weights: Weights{Passing: 1, Warning: 1}}
	for {
		left := n - (EncodedSizeBound("", s) + MaxNameLen)
		if left <= MaxTagLen+2 {
			s.Tags = append(s.Tags, strings.Repeat("t", left-2))
			return s
		}
		s.Tags = append(s.Tags, strings.Repeat("t", MaxTagLen))
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(s *Service)
		field string // "" means valid
	}{
		{"valid", func(s *Service) {}, ""},
		{"minimal", func(s *Service) { *s = Service{ID: "a", Name: "a", Port: 1, Weights: Weights{1, 0}} }, ""},

		{"name empty", func(s *Service) { s.Name = "" }, "Name"},
		{"name 63", func(s *Service) { s.Name = strings.Repeat("n", 63) }, ""},
		{"name 64", func(s *Service) { s.Name = strings.Repeat("n", 64) }, "Name"},
		{"name digits and hyphen", func(s *Service) { s.Name = "web-2-A" }, ""},
		{"name underscore", func(s *Service) { s.Name = "web_api" }, "Name"},
		{"name dot", func(s *Service) { s.Name = "web.api" }, "Name"},
		{"name space", func(s *Service) { s.Name = "web api" }, "Name"},
		{"name unicode", func(s *Service) { s.Name = "wéb" }, "Name"},
		{"name leading hyphen", func(s *Service) { s.Name = "-web" }, "Name"},
		{"name trailing hyphen", func(s *Service) { s.Name = "web-" }, "Name"},

		{"id empty", func(s *Service) { s.ID = "" }, "ID"},
		{"id 128", func(s *Service) { s.ID = strings.Repeat("i", 128) }, ""},
		{"id 129", func(s *Service) { s.ID = strings.Repeat("i", 129) }, "ID"},
		{"id punctuation", func(s *Service) { s.ID = "web:8080@host_1.x~" }, ""},
		{"id slash", func(s *Service) { s.ID = "web/1" }, "ID"},
		{"id space", func(s *Service) { s.ID = "web 1" }, "ID"},
		{"id control", func(s *Service) { s.ID = "web\x001" }, "ID"},
		{"id del", func(s *Service) { s.ID = "web\x7f" }, "ID"},
		{"id non-ascii", func(s *Service) { s.ID = "wéb" }, "ID"},

		{"port 0", func(s *Service) { s.Port = 0 }, "Port"},
		{"port negative", func(s *Service) { s.Port = -1 }, "Port"},
		{"port 1", func(s *Service) { s.Port = 1 }, ""},
		{"port 65535", func(s *Service) { s.Port = 65535 }, ""},
		{"port 65536", func(s *Service) { s.Port = 65536 }, "Port"},

		{"address empty", func(s *Service) { s.Address = "" }, ""},
		{"address ipv6", func(s *Service) { s.Address = "2001:db8::1" }, ""},
		{"address host", func(s *Service) { s.Address = "db-1.example.com" }, ""},
		{"address fqdn", func(s *Service) { s.Address = "db-1.example.com." }, ""},
		{"address single label", func(s *Service) { s.Address = "localhost" }, ""},
		{"address underscore", func(s *Service) { s.Address = "db_1.example.com" }, "Address"},
		{"address empty label", func(s *Service) { s.Address = "db..example.com" }, "Address"},
		{"address dot", func(s *Service) { s.Address = "." }, "Address"},
		{"address url", func(s *Service) { s.Address = "http://db" }, "Address"},
		{"address host:port", func(s *Service) { s.Address = "10.0.0.1:80" }, "Address"},
		{"address label 64", func(s *Service) { s.Address = strings.Repeat("a", 64) + ".com" }, "Address"},
		{"address label hyphen", func(s *Service) { s.Address = "-db.example.com" }, "Address"},
		{"address 255", func(s *Service) { s.Address = longHost(255) }, ""},
		{"address 256", func(s *Service) { s.Address = longHost(256) }, "Address"},

		{"tags none", func(s *Service) { s.Tags = nil }, ""},
		{"tags 32", func(s *Service) { s.Tags = tagsOf(32, "t") }, ""},
		{"tags 33", func(s *Service) { s.Tags = tagsOf(33, "t") }, "Tags"},
		{"tag empty", func(s *Service) { s.Tags = []string{"a", ""} }, "Tags[1]"},
		{"tag 128", func(s *Service) { s.Tags = []string{strings.Repeat("t", 128)} }, ""},
		{"tag 129", func(s *Service) { s.Tags = []string{"a", "b", strings.Repeat("t", 129)} }, "Tags[2]"},
		{"tag space and unicode", func(s *Service) { s.Tags = []string{"café au lait", "k=v"} }, ""},
		{"tag newline", func(s *Service) { s.Tags = []string{"a\nb"} }, "Tags[0]"},
		{"tag del", func(s *Service) { s.Tags = []string{"a\x7f"} }, "Tags[0]"},
		{"tag c1 control", func(s *Service) { s.Tags = []string{"a\u0085b"} }, "Tags[0]"},
		{"tag invalid utf-8", func(s *Service) { s.Tags = []string{"a\xffb"} }, "Tags[0]"},

		{"meta none", func(s *Service) { s.Meta = nil }, ""},
		{"meta 32", func(s *Service) { s.Meta = metaOf(32, "v") }, ""},
		{"meta 33", func(s *Service) { s.Meta = metaOf(33, "v") }, "Meta"},
		{"meta key empty", func(s *Service) { s.Meta = map[string]string{"": "v"} }, "Meta"},
		{"meta key 64", func(s *Service) { s.Meta = map[string]string{strings.Repeat("k", 64): "v"} }, ""},
		{"meta key 65", func(s *Service) { s.Meta = map[string]string{strings.Repeat("k", 65): "v"} }, "Meta"},
		{"meta key chars", func(s *Service) { s.Meta = map[string]string{"Ab_9-x": "v"} }, ""},
		{"meta key dot", func(s *Service) { s.Meta = map[string]string{"a.b": "v"} }, "Meta"},
		{"meta key space", func(s *Service) { s.Meta = map[string]string{"a b": "v"} }, "Meta"},
		{"meta value empty", func(s *Service) { s.Meta = map[string]string{"k": ""} }, ""},
		{"meta value 256", func(s *Service) { s.Meta = map[string]string{"k": strings.Repeat("v", 256)} }, ""},
		{"meta value 257", func(s *Service) { s.Meta = map[string]string{"k": strings.Repeat("v", 257)} }, "Meta[k]"},
		{"meta value control", func(s *Service) { s.Meta = map[string]string{"k": "a\tb"} }, "Meta[k]"},
		{"meta value invalid utf-8", func(s *Service) { s.Meta = map[string]string{"k": "\xc3"} }, "Meta[k]"},
		{"meta first bad key sorted", func(s *Service) {
			s.Meta = map[string]string{"b": "\x01", "a": "\x01"}
		}, "Meta[a]"},

		{"weights passing 0", func(s *Service) { s.Weights = Weights{0, 1} }, "Weights.Passing"},
		{"weights passing max", func(s *Service) { s.Weights = Weights{65535, 0} }, ""},
		{"weights passing over", func(s *Service) { s.Weights = Weights{65536, 1} }, "Weights.Passing"},
		{"weights warning 0", func(s *Service) { s.Weights = Weights{1, 0} }, ""},
		{"weights warning negative", func(s *Service) { s.Weights = Weights{1, -1} }, "Weights.Warning"},
		{"weights warning over", func(s *Service) { s.Weights = Weights{1, 65536} }, "Weights.Warning"},

		{"size at bound", func(s *Service) { *s = sizedService(MaxEncodedSize) }, ""},
		{"size over bound", func(s *Service) { *s = sizedService(MaxEncodedSize + 1) }, "Service"},
		{"size many tags", func(s *Service) { s.Tags = tagsOf(MaxTags, strings.Repeat("t", 40)) }, "Service"},
		{"size big meta", func(s *Service) { s.Meta = metaOf(MaxMetaPairs, strings.Repeat("v", 40)) }, "Service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validService()
			tt.edit(&s)
			err := s.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate() = %v, want a *FieldError for %s", err, tt.field)
			}
			if fe.Field != tt.field {
				t.Errorf("Field = %q, want %q (error %q)", fe.Field, tt.field, err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
			}
			if !strings.HasPrefix(err.Error(), tt.field+": ") || fe.Msg == "" {
				t.Errorf("Error() = %q, want it to start with the field %q and say why", err, tt.field)
			}
			if m := fe.Msg; strings.ToLower(m[:1]) != m[:1] {
				t.Errorf("Msg = %q, want it lower-case", m)
			}
		})
	}
}

// longHost is a valid host name of exactly n bytes (short labels, so only
// the total length can be wrong).
func longHost(n int) string {
	return strings.Repeat("a.", n/2) + strings.Repeat("a", n%2)
}

func TestLongHost(t *testing.T) {
	for _, n := range []int{255, 256} {
		if h := longHost(n); len(h) != n {
			t.Fatalf("longHost(%d) has %d bytes", n, len(h))
		}
	}
}

func TestValidateName(t *testing.T) {
	for _, name := range []string{"a", "A-1", strings.Repeat("z", MaxNameLen)} {
		if err := ValidateName("node", name); err != nil {
			t.Errorf("ValidateName(%q) = %v", name, err)
		}
	}
	for _, name := range []string{"", "-a", "a-", "a.b", "a_b", " a", strings.Repeat("z", MaxNameLen+1)} {
		err := ValidateName("node", name)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "node" {
			t.Errorf("ValidateName(%q) = %v, want a FieldError for field node", name, err)
		}
	}
}

func TestValidateUnnormalized(t *testing.T) {
	// Validate does not fill defaults: the caller normalizes first.
	s := Service{Name: "web", Port: 80}
	var fe *FieldError
	if err := s.Validate(); !errors.As(err, &fe) || fe.Field != "ID" {
		t.Errorf("Validate() of an unnormalized service = %v, want an ID error", err)
	}
	if err := s.Normalize().Validate(); err != nil {
		t.Errorf("Normalize().Validate() = %v", err)
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name string
		in   Service
		want Service
	}{
		{"defaults", Service{Name: "web", Port: 80},
			Service{ID: "web", Name: "web", Port: 80, Weights: Weights{1, 1}}},
		{"id kept", Service{ID: "web-1", Name: "web", Port: 80},
			Service{ID: "web-1", Name: "web", Port: 80, Weights: Weights{1, 1}}},
		{"weights kept", Service{ID: "a", Name: "web", Weights: Weights{5, 0}},
			Service{ID: "a", Name: "web", Weights: Weights{5, 0}}},
		{"warning only kept", Service{ID: "a", Name: "web", Weights: Weights{0, 3}},
			Service{ID: "a", Name: "web", Weights: Weights{0, 3}}},
		{"tags and meta", Service{ID: "a", Name: "web", Tags: []string{"x"}, Meta: map[string]string{"k": "v"}},
			Service{ID: "a", Name: "web", Tags: []string{"x"}, Meta: map[string]string{"k": "v"}, Weights: Weights{1, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.Normalize(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Normalize() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestNormalizeCopies(t *testing.T) {
	in := Service{Name: "web", Tags: []string{"a", "b"}, Meta: map[string]string{"k": "v"}}
	out := in.Normalize()
	in.Tags[0] = "changed"
	in.Meta["k"] = "changed"
	in.Meta["new"] = "x"
	if out.Tags[0] != "a" || out.Meta["k"] != "v" || len(out.Meta) != 1 {
		t.Errorf("Normalize shares tags or meta with its input: %+v", out)
	}
	if c := (Service{Name: "x"}).Clone(); c.Tags != nil || c.Meta != nil {
		t.Errorf("Clone of nil tags/meta = %+v, want nil kept", c)
	}
}

func TestEncodedSizeBound(t *testing.T) {
	s := Service{ID: "id", Name: "name", Address: "addr", Tags: []string{"t1", "t22"}, Meta: map[string]string{"k": "vv"}}
	// fixed + origin + 4 strings with their prefixes + tags + meta
	want := entryFixedFields + len("node") + 2 + 4 + 2 + 2 + 4 + 2 + 4 + 2 + 3 + 2 + 1 + 2 + 2 + 2
	if got := EncodedSizeBound("node", s); got != want {
		t.Errorf("EncodedSizeBound = %d, want %d", got, want)
	}
	if a, b := EncodedSizeBound("", s), EncodedSizeBound(strings.Repeat("n", MaxNameLen), s); b-a != MaxNameLen {
		t.Errorf("origin adds %d bytes, want %d", b-a, MaxNameLen)
	}
	// Every service that validates fits in MaxEncodedSize from any valid origin.
	s = sizedService(MaxEncodedSize)
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if n := EncodedSizeBound(strings.Repeat("n", MaxNameLen), s); n > MaxEncodedSize {
		t.Errorf("a valid service is %d bytes from the longest origin, over %d", n, MaxEncodedSize)
	}
}

func TestNodeID(t *testing.T) {
	id := NodeID("node-1")
	if id != NodeID("node-1") {
		t.Error("NodeID is not stable")
	}
	if id == NodeID("node-2") {
		t.Error("two names share a NodeID")
	}
	parts := strings.Split(id, "-")
	if len(parts) != 5 || len(parts[0]) != 8 || len(parts[1]) != 4 || len(parts[2]) != 4 || len(parts[3]) != 4 || len(parts[4]) != 12 {
		t.Fatalf("NodeID = %q, want the 8-4-4-4-12 UUID form", id)
	}
	if parts[2][0] != '5' || !strings.ContainsRune("89ab", rune(parts[3][0])) {
		t.Errorf("NodeID = %q, want version 5 and the RFC 4122 variant", id)
	}
}
