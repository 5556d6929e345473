package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestObserveAndScrape(t *testing.T) {
	calls := 0
	m := New(func(context.Context) (int64, int64, error) {
		calls++
		return 7, 4096, nil
	})
	m.Observe("raw", "PUT", 201, 100, 0, 20*time.Millisecond)
	m.Observe("raw", "GET", 404, 0, 50, time.Millisecond)
	m.Observe("", "BREW", 500, 0, 10, time.Millisecond)
	out := scrape(t, m)
	for _, want := range []string{
		`arca_http_requests_total{format="raw",method="PUT",status="2xx"} 1`,
		`arca_http_requests_total{format="raw",method="GET",status="4xx"} 1`,
		`arca_http_requests_total{format="none",method="OTHER",status="5xx"} 1`,
		`arca_http_request_bytes_total{format="raw"} 100`,
		`arca_http_response_bytes_total{format="raw"} 50`,
		`arca_http_request_duration_seconds_bucket{format="raw",method="PUT",le="0.025"} 1`,
		"arca_blob_store_blobs 7",
		"arca_blob_store_bytes 4096",
		"go_goroutines",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	scrape(t, m)
	if calls != 1 {
		t.Errorf("blob totals read %d times in two quick scrapes, want 1", calls)
	}
}

func TestBlobCountError(t *testing.T) {
	m := New(func(context.Context) (int64, int64, error) { return 0, 0, errors.New("db down") })
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("scrape with a failing blob count: status %d, want 500", resp.StatusCode)
	}
}

func TestNilMetricsObserveIsNoOp(t *testing.T) {
	var m *Metrics
	m.Observe("raw", "GET", 200, 0, 0, time.Millisecond) // must not panic
}
