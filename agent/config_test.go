package agent

import (
	"strings"
	"testing"
	"time"
)

func TestValidateNamesTheBadField(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Config)
		want   string // substring of the error; "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"dev", func(c *Config) { *c = DevConfig() }, ""},
		{"node with dot", func(c *Config) { c.NodeName = "a.b" }, "node"},
		{"empty node", func(c *Config) { c.NodeName = "" }, "node"},
		{"datacenter", func(c *Config) { c.Datacenter = "dc_1" }, "datacenter"},
		{"bind not an IP", func(c *Config) { c.BindAddr = "example" }, "bind"},
		{"bind template", func(c *Config) { c.BindAddr = loopbackV4 }, ""},
		{"bind template matching nothing", func(c *Config) { c.BindAddr = `{{ GetInterfaceIP "no-such-if0" }}` }, "bind"},
		{"bind template syntax", func(c *Config) { c.BindAddr = `{{ GetPrivateIP` }, "bind"},
		{"advertise", func(c *Config) { c.AdvertiseAddr = "300.1.1.1" }, "advertise"},
		{"port", func(c *Config) { c.Port = 70000 }, "port"},
		{"http addr", func(c *Config) { c.HTTPAddr = "8500" }, "http-addr"},
		{"retry interval", func(c *Config) { c.RetryInterval = 0 }, "retry-interval"},
		{"retry max", func(c *Config) { c.RetryMax = -1 }, "retry-max"},
		{"key not base64", func(c *Config) { c.EncryptKey = "not base64!" }, "encrypt"},
		{"key too short", func(c *Config) { c.EncryptKey = "AAAA" }, "encrypt"},
		{"dev with data dir", func(c *Config) { *c = DevConfig(); c.DataDir = "/tmp/x" }, "data-dir"},
		{"tombstones never reaped", func(c *Config) { c.TombstoneTTL = 0 }, "tombstone-ttl"},
		{"epochs too tightly bound", func(c *Config) { c.EpochMaxSkew = time.Minute }, "epoch-max-skew"},
		{"key 16 bytes", func(c *Config) { c.EncryptKey = "AAAAAAAAAAAAAAAAAAAAAA==" }, ""},
		{"dns off", func(c *Config) { c.DNSAddr = "" }, ""},
		{"dns addr without a port", func(c *Config) { c.DNSAddr = "127.0.0.1" }, "dns-addr"},
		{"domain without the dot", func(c *Config) { c.Domain = "consul" }, ""},
		{"empty domain", func(c *Config) { c.Domain = "" }, "domain"},
		{"bad domain", func(c *Config) { c.Domain = "my_domain." }, "domain"},
		{"dns service ttl", func(c *Config) { c.DNSServiceTTL = 30 * time.Second }, ""},
		{"negative dns service ttl", func(c *Config) { c.DNSServiceTTL = -time.Second }, "dns-service-ttl"},
		{"dns node ttl too long", func(c *Config) { c.DNSNodeTTL = 1 << 62 }, "dns-node-ttl"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.NodeName = "node-a"
			tc.change(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("want an error naming %q, got %v", tc.want, err)
			}
		})
	}
}

const loopbackV4 = `{{ GetAllInterfaces | include "flags" "loopback" | include "type" "IPv4" | attr "address" }}`

func TestTemplateResolvesToOneAddress(t *testing.T) {
	ip, err := resolveIP("bind", loopbackV4)
	if err != nil || ip != "127.0.0.1" {
		t.Fatalf("got %q, %v", ip, err)
	}
	// Several matches must be refused rather than one picked silently.
	several := `{{ GetAllInterfaces | include "flags" "loopback" | join "address" " " }} 127.0.0.2`
	if ip, err := resolveIP("bind", several); err == nil || !strings.Contains(err.Error(), "several") {
		t.Fatalf("several addresses: got %q, %v", ip, err)
	}
}
