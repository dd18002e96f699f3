package certs

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ExpiryMetric is the gauge NewExpiryCollector reports.
const ExpiryMetric = "overcommit_webhook_serving_certificate_expiry_timestamp_seconds"

// NewExpiryCollector reports when the serving certificate in certFile expires, read at each
// scrape: controller-runtime's certwatcher counts reloads but says nothing of expiry, and an
// alert on this gauge catches a renewal that stopped (cert-manager or the self-signed
// provisioner) months before the apiserver starts failing its calls. The file is what the
// webhook serves once its watcher has reloaded it. With a chain in the file, the earliest expiry
// counts: any certificate of the chain expiring breaks verification. A missing or unreadable
// file gives no sample rather than a failed scrape (certwatcher_read_certificate_errors_total
// counts that case).
func NewExpiryCollector(certFile string) prometheus.Collector {
	return &expiryCollector{file: certFile, desc: prometheus.NewDesc(ExpiryMetric,
		"When the webhook's serving certificate (the earliest of its chain in tls.crt) expires, in seconds since the epoch.", nil, nil)}
}

type expiryCollector struct {
	file string
	desc *prometheus.Desc
}

func (c *expiryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *expiryCollector) Collect(ch chan<- prometheus.Metric) {
	data, err := os.ReadFile(c.file)
	if err != nil {
		return
	}
	if t, ok := earliestExpiry(data); ok {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(t.Unix()))
	}
}

// earliestExpiry is the earliest NotAfter of the certificates in PEM data; ok is false when no
// certificate parses.
func earliestExpiry(data []byte) (earliest time.Time, ok bool) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return earliest, ok
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			continue
		}
		if !ok || cert.NotAfter.Before(earliest) {
			earliest, ok = cert.NotAfter, true
		}
	}
}
