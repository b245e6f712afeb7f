package agent

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/shoal-sd/shoal/acl"
)

// aclConfig reads the acl block, Consul's agent-config keys plus the
// token list Shoal needs without servers:
//
//	"acl": {
//	  "enabled": true, "default_policy": "deny",
//	  "tokens": {"initial_management": "…", "agent": "…", "default": "…",
//	             "list": [{"secret_id": "…", "description": "…", "policies": ["web"]}]},
//	  "policies": [{"name": "web", "rules": {"service": {"web": {"policy": "write"}}}}]
//	}
//
// The whole block is checked as the agent would build it, so a policy
// naming an unknown rule stops the agent at start with its place.
func (d *configDecoder) aclConfig(f *FileConfig, path string, v *jsonNode) error {
	c := &acl.Config{}
	err := d.object(path, v, func(m *jsonMember) (err error) {
		p := path + "." + m.key
		switch m.key {
		case "enabled":
			var b *bool
			if b, err = d.boolean(p, m.val); err == nil {
				c.Enabled = *b
			}
		case "default_policy":
			var s *string
			if s, err = d.str(p, m.val); err == nil {
				c.DefaultPolicy = *s
			}
		case "down_policy", "enable_token_persistence", "enable_token_replication", "token_ttl", "policy_ttl", "role_ttl":
			// Consul's keys for its servers' tokens; nothing to do here.
		case "tokens":
			err = d.aclTokens(c, p, m.val)
		case "policies":
			err = d.objects(p, m.val, func(ep string, e *jsonNode) error {
				var pc acl.PolicyConfig
				err := d.object(ep, e, func(pm *jsonMember) (err error) {
					switch pm.key {
					case "name":
						var s *string
						if s, err = d.str(ep+".name", pm.val); err == nil {
							pc.Name = *s
						}
					case "description":
					case "rules":
						pc.Rules = json.RawMessage(d.data[pm.val.off:pm.val.end])
					default:
						err = d.unknown(ep+"."+pm.key, pm)
					}
					return err
				})
				c.Policies = append(c.Policies, pc)
				return err
			})
		default:
			err = d.unknown(p, m)
		}
		return err
	})
	if err != nil {
		return err
	}
	if _, err := acl.NewResolver(*c); err != nil {
		return d.errAt(v.off, path, "%s", strings.TrimPrefix(err.Error(), "acl."))
	}
	f.ACL = c
	return nil
}

func (d *configDecoder) aclTokens(c *acl.Config, path string, v *jsonNode) error {
	return d.object(path, v, func(m *jsonMember) (err error) {
		p := path + "." + m.key
		var s *string
		switch m.key {
		case "initial_management", "master":
			if s, err = d.str(p, m.val); err == nil {
				c.InitialManagement = *s
			}
		case "agent":
			if s, err = d.str(p, m.val); err == nil {
				c.Agent = *s
			}
		case "default":
			if s, err = d.str(p, m.val); err == nil {
				c.Default = *s
			}
		case "agent_recovery", "agent_master", "replication", "config_file_service_registration":
			// Consul's tokens for parts Shoal does not have.
		case "list":
			err = d.objects(p, m.val, func(ep string, e *jsonNode) error {
				var tc acl.TokenConfig
				err := d.object(ep, e, func(tm *jsonMember) (err error) {
					var s *string
					switch tm.key {
					case "secret_id":
						if s, err = d.str(ep+".secret_id", tm.val); err == nil {
							tc.SecretID = *s
						}
					case "description":
						if s, err = d.str(ep+".description", tm.val); err == nil {
							tc.Description = *s
						}
					case "policies":
						tc.Policies, err = d.list(ep+".policies", tm.val)
					default:
						err = d.unknown(ep+"."+tm.key, tm)
					}
					return err
				})
				c.Tokens = append(c.Tokens, tc)
				return err
			})
		default:
			err = d.unknown(p, m)
		}
		return err
	})
}

// objects calls each for every element of an array, with its path.
func (d *configDecoder) objects(path string, v *jsonNode, each func(path string, e *jsonNode) error) error {
	if v.kind != kindArray {
		return d.typeErr(path, v, kindArray)
	}
	for i, e := range v.elems {
		if err := each(path+"["+strconv.Itoa(i)+"]", e); err != nil {
			return err
		}
	}
	return nil
}

// tlsKey reads one of cert_file, key_file, ca_file, verify_incoming.
func (d *configDecoder) tlsKey(f *FileConfig, path, key string, v *jsonNode) (err error) {
	var s *string
	switch key {
	case "cert_file":
		if s, err = d.str(path, v); err == nil {
			f.TLS.CertFile = *s
		}
	case "key_file":
		if s, err = d.str(path, v); err == nil {
			f.TLS.KeyFile = *s
		}
	case "ca_file":
		if s, err = d.str(path, v); err == nil {
			f.TLS.CAFile = *s
		}
	case "verify_incoming":
		var b *bool
		if b, err = d.boolean(path, v); err == nil {
			f.TLS.VerifyIncoming = *b
		}
	case "verify_outgoing", "verify_server_hostname", "tls_min_version", "tls_cipher_suites":
		// Consul's, for its RPC between agents; Shoal's gossip has its own key.
	default:
		err = d.errAt(v.off, path, "unknown key")
	}
	return err
}
