package health

import (
	"net/url"
	"strings"
)

// redacted stands in for a secret in what the agent shows.
const redacted = "redacted"

// RedactURL hides the userinfo of a check's URL ("http://user:pw@h/" is
// shown as "http://redacted@h/"), so that credentials in a check URL are
// not gossiped in its output nor shown by /v1/agent/checks. A URL that
// does not parse but holds an '@' is hidden whole.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if strings.Contains(raw, "@") {
			return "(a URL that does not parse)"
		}
		return raw
	}
	if u.User == nil {
		return raw
	}
	u.User = url.User(redacted)
	return u.String()
}

// redactIn removes the userinfo of raw wherever s shows it: as given, as
// net/http prints it in its errors (user:***@), or percent-encoded.
func redactIn(s, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if strings.Contains(raw, "@") {
			return strings.ReplaceAll(s, raw, RedactURL(raw))
		}
		return s
	}
	if u.User == nil {
		return s
	}
	s = strings.ReplaceAll(s, raw, RedactURL(raw))
	s = strings.ReplaceAll(s, u.User.String()+"@", redacted+"@")
	s = strings.ReplaceAll(s, u.User.Username()+":***@", redacted+"@")
	return s
}

// RedactHeader shows a check's headers with their names and without their
// values (Authorization, API keys, cookies), as /v1/agent/checks lists
// them.
func RedactHeader(h map[string][]string) map[string][]string {
	if h == nil {
		return nil
	}
	out := make(map[string][]string, len(h))
	for k, vs := range h {
		r := make([]string, len(vs))
		for i := range r {
			r[i] = redacted
		}
		out[k] = r
	}
	return out
}
