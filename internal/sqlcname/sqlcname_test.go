package sqlcname

import "testing"

func TestOf(t *testing.T) {
	for _, tc := range []struct{ sql, want string }{
		{"-- name: GetCampaign :one\nSELECT 1", "GetCampaign"},
		{"-- name: X :one", "X"},
		{"-- name: Bare", "Bare"},
		{"SELECT 1", ""},
		{"", ""},
	} {
		if got := Of(tc.sql); got != tc.want {
			t.Errorf("Of(%q) = %q, want %q", tc.sql, got, tc.want)
		}
	}
}
