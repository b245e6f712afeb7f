package api

import "testing"

func TestBaseURL(t *testing.T) {
	tests := []struct {
		addr, env, want string
	}{
		{"", "", "http://127.0.0.1:8500"},
		{"", "10.0.0.1:8501", "http://10.0.0.1:8501"},
		{"", "https://agent.local:8501", "https://agent.local:8501"},
		{"127.0.0.1:9000", "10.0.0.1:8501", "http://127.0.0.1:9000"},
		{"http://[::1]:8500", "", "http://[::1]:8500"},
		{"http://proxy:80/shoal/", "", "http://proxy:80/shoal"},
	}
	for _, tt := range tests {
		t.Setenv(EnvHTTPAddr, tt.env)
		got, err := (&Client{Addr: tt.addr}).baseURL()
		if err != nil || got != tt.want {
			t.Errorf("Addr %q, $%s %q: got %q, %v; want %q", tt.addr, EnvHTTPAddr, tt.env, got, err, tt.want)
		}
	}
}
