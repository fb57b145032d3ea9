// Command gen writes internal/instances/ondemand_prices.json from AWS's bulk
// price list: the on-demand hourly Linux price of every instance type in
// every commercial region (make prices). It needs the internet.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/pricing"
)

func main() {
	index := flag.String("index", pricing.BulkIndexURL, "URL of the AmazonEC2 region index of the bulk price list")
	out := flag.String("out", "internal/instances/ondemand_prices.json", "the table to write")
	regions := flag.String("regions", strings.Join(cloud.CommercialRegions(), ","), "comma-separated regions")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	// The offer files are hundreds of MB each: no overall client timeout.
	t, err := pricing.Generate(ctx, &http.Client{}, *index, strings.Split(*regions, ","))
	if err == nil {
		var b []byte
		if b, err = t.Marshal(); err == nil {
			err = os.WriteFile(*out, b, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	n := 0
	for _, r := range t.Regions {
		n += len(r)
	}
	fmt.Printf("Wrote %s: %d prices in %d regions\n", *out, n, len(t.Regions))
}
