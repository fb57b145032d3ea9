package faultproxy

import "testing"

func TestFindItemsAndEdits(t *testing.T) {
	doc := []byte(`<?xml version="1.0" encoding="utf-8"?>
<R xmlns="http://ec2.amazonaws.com/doc/2016-11-15"><set><item><id>a</id><status>available</status>` +
		`<attachmentSet><item><status>attached</status></item></attachmentSet><empty/></item>` +
		`<item><id>b</id><status>in-use</status></item></set></R>`)
	items, err := findItems(doc, "R/set/item")
	if err != nil || len(items) != 2 {
		t.Fatalf("findItems: %v, %d items", err, len(items))
	}
	if items[0].field("status") != "available" || items[0].field("attachmentSet/item/status") != "attached" ||
		items[1].field("id") != "b" {
		t.Errorf("fields: %+v %+v", items[0].fields, items[1].fields)
	}
	got := rewriteItems(doc, "R/set/item", func(it item) []edit {
		return it.set("status", "a<b", "missing", "x")
	})
	want := `<?xml version="1.0" encoding="utf-8"?>
<R xmlns="http://ec2.amazonaws.com/doc/2016-11-15"><set><item><id>a</id><status>a&lt;b</status>` +
		`<attachmentSet><item><status>attached</status></item></attachmentSet><empty/></item>` +
		`<item><id>b</id><status>a&lt;b</status></item></set></R>`
	if string(got) != want {
		t.Errorf("rewrite:\n got %s\nwant %s", got, want)
	}
	if bad := []byte("<R><set><item>"); string(rewriteItems(bad, "R/set/item", nil)) != string(bad) {
		t.Error("a malformed document must pass through unchanged")
	}
}
