// Command gen writes internal/instances/ondemand_prices.json: the on-demand
// hourly Linux price of every instance type in every commercial region
// (make prices). By default it reads AWS's bulk price list, which needs the
// internet; with --dataset it reads the same prices as published data in a
// Go module (pricing.DatasetModule), fetched by the go command through the
// Go module proxy.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/pricing"
)

func main() {
	index := flag.String("index", pricing.BulkIndexURL, "URL of the AmazonEC2 region index of the bulk price list")
	dataset := flag.String("dataset", "", "read the prices from this version of "+pricing.DatasetModule+
		" (module@version, fetched with go mod download) instead of the bulk price list")
	out := flag.String("out", "internal/instances/ondemand_prices.json", "the table to write")
	regions := flag.String("regions", strings.Join(cloud.CommercialRegions(), ","), "comma-separated regions")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	var t pricing.Table
	var err error
	if *dataset != "" {
		t, err = fromDataset(ctx, *dataset, strings.Split(*regions, ","))
	} else {
		// The offer files are hundreds of MB each: no overall client timeout.
		t, err = pricing.Generate(ctx, &http.Client{}, *index, strings.Split(*regions, ","))
	}
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

// fromDataset downloads the dataset module (go mod download) and builds the
// table from its data/instances.json, saying in the table where and when
// the data came from, and which regions it has no prices for.
func fromDataset(ctx context.Context, moduleVersion string, regions []string) (pricing.Table, error) {
	if !strings.HasPrefix(moduleVersion, pricing.DatasetModule+"@") {
		return pricing.Table{}, fmt.Errorf("--dataset %q: want %s@VERSION", moduleVersion, pricing.DatasetModule)
	}
	b, err := exec.CommandContext(ctx, "go", "mod", "download", "-json", moduleVersion).Output()
	var mod struct{ Version, Dir, Info, Error string }
	_ = json.Unmarshal(b, &mod)
	switch {
	case mod.Dir != "":
	case mod.Error != "":
		return pricing.Table{}, fmt.Errorf("go mod download %s: %s", moduleVersion, mod.Error)
	case err != nil:
		return pricing.Table{}, fmt.Errorf("go mod download %s: %w", moduleVersion, err)
	default:
		return pricing.Table{}, fmt.Errorf("go mod download %s: no directory", moduleVersion)
	}
	var info struct{ Time time.Time }
	if ib, err := os.ReadFile(mod.Info); err == nil {
		_ = json.Unmarshal(ib, &info)
	}
	f, err := os.Open(filepath.Join(mod.Dir, "data", "instances.json"))
	if err != nil {
		return pricing.Table{}, fmt.Errorf("opening the dataset of %s: %w", moduleVersion, err)
	}
	defer func() { _ = f.Close() }()
	prices, missing, err := pricing.ParseDataset(f, regions)
	if err != nil {
		return pricing.Table{}, err
	}
	source := fmt.Sprintf("AWS's on-demand Linux list prices as ec2instances.info (Vantage) publishes them, "+
		"from data/instances.json of the Go module %s %s (published %s), by make prices PRICES_SOURCE=dataset "+
		"(for where AWS's bulk price list cannot be reached)", pricing.DatasetModule, mod.Version, info.Time.UTC().Format("2006-01-02"))
	if len(missing) > 0 {
		source += "; no prices for " + strings.Join(missing, ", ") + " (not in the dataset): there the Pricing API or the class's onDemandPrices price on-demand types"
		fmt.Fprintln(os.Stderr, "warning: the dataset has no prices for", strings.Join(missing, ", "))
	}
	return pricing.Table{Source: source, License: pricing.DatasetLicense, Regions: prices}, nil
}
