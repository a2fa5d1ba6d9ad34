package dockercheck

import (
	"os"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
)

func TestConfigure(t *testing.T) {
	tests := []struct {
		name    string
		preset  map[string]string // value exported before Configure; absent = unset
		wantEnv map[string]string
	}{
		{
			name:    "unset gets the defaults",
			wantEnv: map[string]string{"TESTCONTAINERS_RYUK_DISABLED": "true", "TESTCONTAINERS_HOST_OVERRIDE": "127.0.0.1"},
		},
		{
			name:    "caller's values win",
			preset:  map[string]string{"TESTCONTAINERS_RYUK_DISABLED": "false", "TESTCONTAINERS_HOST_OVERRIDE": "::1"},
			wantEnv: map[string]string{"TESTCONTAINERS_RYUK_DISABLED": "false", "TESTCONTAINERS_HOST_OVERRIDE": "::1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for key := range tc.wantEnv {
				t.Setenv(key, "") // restores the original value afterwards
				if v, ok := tc.preset[key]; ok {
					t.Setenv(key, v)
				} else {
					os.Unsetenv(key)
				}
			}
			Configure()
			for key, want := range tc.wantEnv {
				if got := os.Getenv(key); got != want {
					t.Errorf("%s = %q, want %q", key, got, want)
				}
			}
		})
	}
}

func TestBindLoopback(t *testing.T) {
	tests := []struct {
		hostPort string
		ports    []string
	}{
		{hostPort: "", ports: []string{"5432/tcp"}},
		{hostPort: "6380", ports: []string{"6379/tcp"}},
		{hostPort: "", ports: []string{"80/tcp", "443/tcp"}},
	}
	for _, tc := range tests {
		req := testcontainers.GenericContainerRequest{}
		if err := BindLoopback(tc.hostPort, tc.ports...).Customize(&req); err != nil {
			t.Fatalf("Customize: %v", err)
		}
		hc := &container.HostConfig{}
		req.HostConfigModifier(hc)
		if len(hc.PortBindings) != len(tc.ports) {
			t.Errorf("%v: %d bindings, want %d", tc.ports, len(hc.PortBindings), len(tc.ports))
		}
		for _, p := range tc.ports {
			b := hc.PortBindings[network.MustParsePort(p)]
			if len(b) != 1 || b[0].HostIP != Loopback || b[0].HostPort != tc.hostPort {
				t.Errorf("binding of %s = %+v, want one on %s:%q", p, b, Loopback, tc.hostPort)
			}
		}
	}
}
