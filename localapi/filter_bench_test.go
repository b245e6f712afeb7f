package localapi

import (
	"net/url"
	"testing"
)

// The filtered path builds an api value per instance and evaluates the
// expression on it by reflection; these measure its price beside
// BenchmarkHealthServiceChecks100.

func BenchmarkHealthServiceFilter100(b *testing.B) {
	_, h := benchServerChecks(b)
	benchmarkRequests(b, h, "/v1/health/service/web?filter="+url.QueryEscape(
		`Service.Meta.version == "2.4.1" and "prod" in Service.Tags and Checks.Status == passing`))
}

func BenchmarkHealthServiceNodeMeta100(b *testing.B) {
	_, h := benchServerChecks(b)
	benchmarkRequests(b, h, "/v1/health/service/web?node-meta=rack:r1")
}
