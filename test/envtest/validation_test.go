package testenv

import (
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	xdrivev1alpha1 "github.com/xdrive-io/xdrive/api/v1alpha1"
)

const (
	kindXD = "XDrive"
	kindWS = "Workstation"
)

// invalidCase is a manifest the API server must reject with an error naming the field.
type invalidCase struct {
	name string
	kind string
	spec string   // YAML
	want []string // substrings of the error; the first names the field
}

// Valid bases the cases below vary.
const (
	ws     = `driveRef: {name: home}, instanceTypes: [t3.large]`
	wsCont = ws + `, containers: [{name: jupyter, image: jupyter/base-notebook`
)

var invalidCases = []invalidCase{
	// XDrive: ranges.
	{name: "sizeGiB 0", kind: kindXD, spec: `{sizeGiB: 0}`, want: []string{"spec.sizeGiB", "greater than or equal to 1"}},
	{name: "sizeGiB 16385", kind: kindXD, spec: `{sizeGiB: 16385}`, want: []string{"spec.sizeGiB", "less than or equal to 16384"}},
	{name: "sizeGiB missing", kind: kindXD, spec: `{volumeType: gp3}`, want: []string{"spec.sizeGiB", "Required value"}},
	{name: "iops 99", kind: kindXD, spec: `{sizeGiB: 10, iops: 99}`, want: []string{"spec.iops", "greater than or equal to 100"}},
	{name: "iops 256001", kind: kindXD, spec: `{sizeGiB: 10, volumeType: io2, iops: 256001}`, want: []string{"spec.iops", "less than or equal to 256000"}},
	{name: "initializationRate 99", kind: kindXD, spec: `{sizeGiB: 10, initializationRateMiBps: 99}`, want: []string{"spec.initializationRateMiBps", "initializationRateMiBps: must be 100-300"}},
	{name: "initializationRate 301", kind: kindXD, spec: `{sizeGiB: 10, initializationRateMiBps: 301}`, want: []string{"spec.initializationRateMiBps", "initializationRateMiBps: must be 100-300"}},
	{name: "keepVolumeForMinutes 0", kind: kindXD, spec: `{sizeGiB: 10, keepVolumeForMinutes: 0}`, want: []string{"spec.keepVolumeForMinutes", "greater than or equal to 1"}},
	{name: "keepVolumeForMinutes over a week", kind: kindXD, spec: `{sizeGiB: 10, keepVolumeForMinutes: 10081}`, want: []string{"spec.keepVolumeForMinutes", "less than or equal to 10080"}},
	{name: "reattach tolerance negative", kind: kindWS, spec: `{` + ws + `, reattachPriceTolerancePercent: -1}`, want: []string{"spec.reattachPriceTolerancePercent", "greater than or equal to 0"}},
	{name: "throughput 124", kind: kindXD, spec: `{sizeGiB: 10, throughputMiBps: 124}`, want: []string{"spec.throughputMiBps", "greater than or equal to 125"}},
	{name: "throughput 2001", kind: kindXD, spec: `{sizeGiB: 10, throughputMiBps: 2001}`, want: []string{"spec.throughputMiBps", "less than or equal to 2000"}},
	{name: "snapshotRetention 0", kind: kindXD, spec: `{sizeGiB: 10, snapshotRetention: 0}`, want: []string{"spec.snapshotRetention", "greater than or equal to 1"}},
	{name: "kmsKeyID empty", kind: kindXD, spec: `{sizeGiB: 10, kmsKeyID: ""}`, want: []string{"spec.kmsKeyID"}},
	// XDrive: enums.
	{name: "volumeType gp4", kind: kindXD, spec: `{sizeGiB: 10, volumeType: gp4}`, want: []string{"spec.volumeType", `Unsupported value: "gp4"`}},
	{name: "filesystem btrfs", kind: kindXD, spec: `{sizeGiB: 10, filesystem: btrfs}`, want: []string{"spec.filesystem", `Unsupported value: "btrfs"`}},
	{name: "deletionPolicy Orphan", kind: kindXD, spec: `{sizeGiB: 10, deletionPolicy: Orphan}`, want: []string{"spec.deletionPolicy", `Unsupported value: "Orphan"`}},
	// XDrive: cross-field rules.
	{name: "throughput with gp2", kind: kindXD, spec: `{sizeGiB: 10, volumeType: gp2, throughputMiBps: 250}`, want: []string{"throughputMiBps: only allowed with volumeType gp3"}},
	{name: "throughput with io2", kind: kindXD, spec: `{sizeGiB: 10, volumeType: io2, iops: 1000, throughputMiBps: 250}`, want: []string{"throughputMiBps: only allowed with volumeType gp3"}},
	{name: "iops with st1", kind: kindXD, spec: `{sizeGiB: 500, volumeType: st1, iops: 3000}`, want: []string{"iops: only allowed with volumeType gp3, io1 or io2"}},
	{name: "iops with gp2", kind: kindXD, spec: `{sizeGiB: 10, volumeType: gp2, iops: 3000}`, want: []string{"iops: only allowed with volumeType gp3, io1 or io2"}},
	{name: "io1 without iops", kind: kindXD, spec: `{sizeGiB: 10, volumeType: io1}`, want: []string{"iops: required with volumeType io1 and io2"}},
	{name: "io2 without iops", kind: kindXD, spec: `{sizeGiB: 10, volumeType: io2}`, want: []string{"iops: required with volumeType io1 and io2"}},
	{name: "st1 below 125 GiB", kind: kindXD, spec: `{sizeGiB: 124, volumeType: st1}`, want: []string{"sizeGiB: st1 and sc1 volumes must be at least 125 GiB"}},
	{name: "sc1 below 125 GiB", kind: kindXD, spec: `{sizeGiB: 10, volumeType: sc1}`, want: []string{"sizeGiB: st1 and sc1 volumes must be at least 125 GiB"}},
	{name: "prewarm with initializationRate", kind: kindXD, spec: `{sizeGiB: 10, initializationRateMiBps: 300, prewarm: true}`, want: []string{"prewarm: not allowed with initializationRateMiBps"}},
	{name: "kmsKeyID unencrypted", kind: kindXD, spec: `{sizeGiB: 10, encrypted: false, kmsKeyID: alias/xdrive}`, want: []string{"kmsKeyID: only allowed when encrypted is true"}},
	// XDrive: source.
	{name: "source both", kind: kindXD, spec: `{sizeGiB: 10, source: {snapshotID: snap-0123456789abcdef0, nameTag: home}}`, want: []string{"spec.source", "source: set exactly one of snapshotID, nameTag or xdrive"}},
	{name: "source snapshot and fork", kind: kindXD, spec: `{sizeGiB: 10, source: {snapshotID: snap-0123456789abcdef0, xdrive: {name: gold}}}`, want: []string{"spec.source", "source: set exactly one of snapshotID, nameTag or xdrive"}},
	{name: "source neither", kind: kindXD, spec: `{sizeGiB: 10, source: {}}`, want: []string{"spec.source", "source: set exactly one of snapshotID, nameTag or xdrive"}},
	{name: "fork of a bad name", kind: kindXD, spec: `{sizeGiB: 10, source: {xdrive: {name: Gold_1}}}`, want: []string{"spec.source.xdrive.name"}},
	{name: "fork of a bad snapshot", kind: kindXD, spec: `{sizeGiB: 10, source: {xdrive: {name: gold, snapshotID: vol-1}}}`, want: []string{"spec.source.xdrive.snapshotID"}},
	{name: "fork of a bad namespace", kind: kindXD, spec: `{sizeGiB: 10, source: {xdrive: {name: gold, namespace: Team_A}}}`, want: []string{"spec.source.xdrive.namespace", "should match"}},
	{name: "fork of a dotted namespace", kind: kindXD, spec: `{sizeGiB: 10, source: {xdrive: {name: gold, namespace: team.a}}}`, want: []string{"spec.source.xdrive.namespace", "should match"}},
	{name: "fork of an empty namespace", kind: kindXD, spec: `{sizeGiB: 10, source: {xdrive: {name: gold, namespace: ""}}}`, want: []string{"spec.source.xdrive.namespace"}},
	{name: "fork of a long namespace", kind: kindXD, spec: `{sizeGiB: 10, source: {xdrive: {name: gold, namespace: ` + strings.Repeat("a", 64) + `}}}`, want: []string{"spec.source.xdrive.namespace"}},
	{name: "source bad snapshotID", kind: kindXD, spec: `{sizeGiB: 10, source: {snapshotID: snap-XYZ}}`, want: []string{"spec.source.snapshotID", "should match"}},
	{name: "source snapshotID without prefix", kind: kindXD, spec: `{sizeGiB: 10, source: {snapshotID: 0123456789abcdef0}}`, want: []string{"spec.source.snapshotID", "should match"}},
	{name: "source empty nameTag", kind: kindXD, spec: `{sizeGiB: 10, source: {nameTag: ""}}`, want: []string{"spec.source.nameTag"}},

	// Workstation: enums.
	{name: "capacityType Reserved", kind: kindWS, spec: `{` + ws + `, capacityType: Reserved}`, want: []string{"spec.capacityType", `Unsupported value: "Reserved"`}},
	{name: "state Paused", kind: kindWS, spec: `{` + ws + `, state: Paused}`, want: []string{"spec.state", `Unsupported value: "Paused"`}},
	{name: "interruptionPolicy Hibernate", kind: kindWS, spec: `{` + ws + `, interruptionPolicy: Hibernate}`, want: []string{"spec.interruptionPolicy", `Unsupported value: "Hibernate"`}},
	{name: "rebalancePolicy Always", kind: kindWS, spec: `{` + ws + `, rebalancePolicy: Always}`, want: []string{"spec.rebalancePolicy", `Unsupported value: "Always"`}},
	{name: "gpus Some", kind: kindWS, spec: `{` + wsCont + `, gpus: Some}]}`, want: []string{"spec.containers[0].gpus", `Unsupported value: "Some"`}},
	{name: "protocol sctp", kind: kindWS, spec: `{` + wsCont + `, ports: [{containerPort: 8888, protocol: sctp}]}]}`, want: []string{"spec.containers[0].ports[0].protocol", `Unsupported value: "sctp"`}},
	{name: "protocol upper case", kind: kindWS, spec: `{` + wsCont + `, ports: [{containerPort: 8888, protocol: TCP}]}]}`, want: []string{"spec.containers[0].ports[0].protocol", `Unsupported value: "TCP"`}},
	// Workstation: spot-only fields.
	{name: "maxSpotPrice with OnDemand", kind: kindWS, spec: `{` + ws + `, capacityType: OnDemand, maxSpotPrice: "0.50"}`, want: []string{"maxSpotPrice: only allowed with capacityType Spot"}},
	{name: "onDemandFallback with OnDemand", kind: kindWS, spec: `{` + ws + `, capacityType: OnDemand, onDemandFallback: true}`, want: []string{"onDemandFallback: only allowed with capacityType Spot"}},
	{name: "maxSpotPrice not a number", kind: kindWS, spec: `{` + ws + `, maxSpotPrice: "$1"}`, want: []string{"spec.maxSpotPrice", "should match"}},
	// Workstation: instance types.
	{name: "instanceType upper case", kind: kindWS, spec: `{driveRef: {name: home}, instanceTypes: [G5.XLARGE]}`, want: []string{"spec.instanceTypes[0]", "should match"}},
	{name: "instanceType without size", kind: kindWS, spec: `{driveRef: {name: home}, instanceTypes: [g5]}`, want: []string{"spec.instanceTypes[0]", "should match"}},
	{name: "instanceType two dots", kind: kindWS, spec: `{driveRef: {name: home}, instanceTypes: [g5.xlarge.extra]}`, want: []string{"spec.instanceTypes[0]", "should match"}},
	{name: "instanceType second bad", kind: kindWS, spec: `{driveRef: {name: home}, instanceTypes: [g5.xlarge, "g5 .xlarge"]}`, want: []string{"spec.instanceTypes[1]", "should match"}},
	{name: "instanceTypes empty", kind: kindWS, spec: `{driveRef: {name: home}, instanceTypes: []}`, want: []string{"spec.instanceTypes", "at least 1 items"}},
	{name: "instanceTypes missing", kind: kindWS, spec: `{driveRef: {name: home}}`, want: []string{"spec.instanceTypes", "Required value"}},
	{name: "instanceTypes 11", kind: kindWS, spec: `{driveRef: {name: home}, instanceTypes: [t3.nano, t3.micro, t3.small, t3.medium, t3.large, t3.xlarge, t3.2xlarge, m7i.large, m7i.xlarge, m7i.2xlarge, m7i.4xlarge]}`, want: []string{"spec.instanceTypes", "must have at most 10 items"}},
	{name: "instanceTypes duplicate", kind: kindWS, spec: `{driveRef: {name: home}, instanceTypes: [g5.xlarge, g4dn.xlarge, g5.xlarge]}`, want: []string{"spec.instanceTypes[2]", "Duplicate value"}},
	// Workstation: zones.
	{name: "zone is a region", kind: kindWS, spec: `{` + ws + `, availabilityZones: [us-east-1]}`, want: []string{"spec.availabilityZones[0]", "should match"}},
	{name: "zone without dashes", kind: kindWS, spec: `{` + ws + `, availabilityZones: [useast1a]}`, want: []string{"spec.availabilityZones[0]", "should match"}},
	{name: "zone duplicate", kind: kindWS, spec: `{` + ws + `, availabilityZones: [us-east-1a, us-east-1a]}`, want: []string{"spec.availabilityZones[1]", "Duplicate value"}},
	// Workstation: driveRef.
	{name: "driveRef not DNS-1123", kind: kindWS, spec: `{driveRef: {name: My_Drive}, instanceTypes: [t3.large]}`, want: []string{"spec.driveRef.name", "should match"}},
	{name: "driveRef empty", kind: kindWS, spec: `{driveRef: {name: ""}, instanceTypes: [t3.large]}`, want: []string{"spec.driveRef.name"}},
	{name: "driveRef missing", kind: kindWS, spec: `{instanceTypes: [t3.large]}`, want: []string{"spec.driveRef", "Required value"}},
	// Workstation: image.
	{name: "image both", kind: kindWS, spec: `{` + ws + `, image: {id: ami-0123456789abcdef0, ssmParameter: /aws/service/ami}}`, want: []string{"spec.image", "image: set exactly one of id or ssmParameter"}},
	{name: "image neither", kind: kindWS, spec: `{` + ws + `, image: {}}`, want: []string{"spec.image", "image: set exactly one of id or ssmParameter"}},
	{name: "image bad AMI ID", kind: kindWS, spec: `{` + ws + `, image: {id: ami-123}}`, want: []string{"spec.image.id", "should match"}},
	{name: "image AMI ID upper case", kind: kindWS, spec: `{` + ws + `, image: {id: ami-0123456789ABCDEF0}}`, want: []string{"spec.image.id", "should match"}},
	{name: "image relative ssmParameter", kind: kindWS, spec: `{` + ws + `, image: {ssmParameter: aws/service/ami}}`, want: []string{"spec.image.ssmParameter", "should match"}},
	// Workstation: tags.
	{name: "tag xdrive.io/", kind: kindWS, spec: `{` + ws + `, tags: {"xdrive.io/x": v}}`, want: []string{"spec.tags", "tags: keys starting with xdrive.io/ or aws: are reserved"}},
	{name: "tag aws:", kind: kindWS, spec: `{` + ws + `, tags: {team: ml, "aws:x": v}}`, want: []string{"spec.tags", "tags: keys starting with xdrive.io/ or aws: are reserved"}},
	// Workstation: mountPath.
	{name: "mountPath relative", kind: kindWS, spec: `{` + ws + `, mountPath: v1}`, want: []string{"spec.mountPath", "should match"}},
	{name: "mountPath root", kind: kindWS, spec: `{` + ws + `, mountPath: /}`, want: []string{"spec.mountPath", "at least 2 chars"}},
	{name: "mountPath trailing slash", kind: kindWS, spec: `{` + ws + `, mountPath: /v1/}`, want: []string{"spec.mountPath", "should match"}},
	{name: "mountPath double slash", kind: kindWS, spec: `{` + ws + `, mountPath: //v1}`, want: []string{"spec.mountPath", "should match"}},
	{name: "mountPath space", kind: kindWS, spec: `{` + ws + `, mountPath: /my data}`, want: []string{"spec.mountPath", "should match"}},
	// Workstation: network IDs.
	{name: "subnet ID short", kind: kindWS, spec: `{` + ws + `, subnetIDs: [subnet-1234]}`, want: []string{"spec.subnetIDs[0]", "should match"}},
	{name: "subnet ID is a sg", kind: kindWS, spec: `{` + ws + `, subnetIDs: [sg-0123456789abcdef0]}`, want: []string{"spec.subnetIDs[0]", "should match"}},
	{name: "sg ID upper case", kind: kindWS, spec: `{` + ws + `, securityGroupIDs: [sg-0123456789ABCDEF0]}`, want: []string{"spec.securityGroupIDs[0]", "should match"}},
	{name: "sg IDs 6", kind: kindWS, spec: `{` + ws + `, securityGroupIDs: [sg-00000001, sg-00000002, sg-00000003, sg-00000004, sg-00000005, sg-00000006]}`, want: []string{"spec.securityGroupIDs", "must have at most 5 items"}},
	// Workstation: containers.
	{name: "container name upper case", kind: kindWS, spec: `{` + ws + `, containers: [{name: Jupyter, image: jupyter/base-notebook}]}`, want: []string{"spec.containers[0].name", "should match"}},
	{name: "container name underscore", kind: kindWS, spec: `{` + ws + `, containers: [{name: my_app, image: busybox}]}`, want: []string{"spec.containers[0].name", "should match"}},
	{name: "container name duplicate", kind: kindWS, spec: `{` + ws + `, containers: [{name: app, image: busybox}, {name: app, image: nginx}]}`, want: []string{"spec.containers[1]", "Duplicate value"}},
	{name: "container image empty", kind: kindWS, spec: `{` + ws + `, containers: [{name: app, image: ""}]}`, want: []string{"spec.containers[0].image"}},
	{name: "containerPort 0", kind: kindWS, spec: `{` + wsCont + `, ports: [{containerPort: 0}]}]}`, want: []string{"spec.containers[0].ports[0].containerPort", "greater than or equal to 1"}},
	{name: "containerPort 65536", kind: kindWS, spec: `{` + wsCont + `, ports: [{containerPort: 65536}]}]}`, want: []string{"spec.containers[0].ports[0].containerPort", "less than or equal to 65535"}},
	{name: "hostPort 70000", kind: kindWS, spec: `{` + wsCont + `, ports: [{containerPort: 8888, hostPort: 70000}]}]}`, want: []string{"spec.containers[0].ports[0].hostPort", "less than or equal to 65535"}},

	// Workstation: paths and ports that would break the host.
	{name: "mountPath traversal", kind: kindWS, spec: `{` + ws + `, mountPath: /v1/../etc}`, want: []string{"spec.mountPath", "mountPath: must not contain . or .. segments"}},
	{name: "mountPath dot-dot", kind: kindWS, spec: `{` + ws + `, mountPath: /..}`, want: []string{"spec.mountPath", "mountPath: must not contain . or .. segments"}},
	{name: "mountPath /etc", kind: kindWS, spec: `{` + ws + `, mountPath: /etc}`, want: []string{"spec.mountPath", "mountPath: must not be, lie under or hold a system directory"}},
	{name: "mountPath under /usr", kind: kindWS, spec: `{` + ws + `, mountPath: /usr/local/data}`, want: []string{"spec.mountPath", "system directory"}},
	{name: "mountPath /proc", kind: kindWS, spec: `{` + ws + `, mountPath: /proc/x}`, want: []string{"spec.mountPath", "system directory"}},
	{name: "mountPath /sys", kind: kindWS, spec: `{` + ws + `, mountPath: /sys}`, want: []string{"spec.mountPath", "system directory"}},
	{name: "mountPath /dev", kind: kindWS, spec: `{` + ws + `, mountPath: /dev/shm}`, want: []string{"spec.mountPath", "system directory"}},
	{name: "mountPath /boot", kind: kindWS, spec: `{` + ws + `, mountPath: /boot}`, want: []string{"spec.mountPath", "system directory"}},
	{name: "mountPath Docker's data", kind: kindWS, spec: `{` + ws + `, mountPath: /var/lib/docker}`, want: []string{"spec.mountPath", "system directory"}},
	{name: "mountPath containerd's data", kind: kindWS, spec: `{` + ws + `, mountPath: /var/lib/containerd/x}`, want: []string{"spec.mountPath", "system directory"}},
	{name: "mountPath above Docker's data", kind: kindWS, spec: `{` + ws + `, mountPath: /var/lib}`, want: []string{"spec.mountPath", "system directory"}},
	{name: "mountPath /run", kind: kindWS, spec: `{` + ws + `, mountPath: /run/docker}`, want: []string{"spec.mountPath", "system directory"}},
	{name: "hostPort twice across containers", kind: kindWS, spec: `{` + ws + `, containers: [{name: a, image: busybox, ports: [{containerPort: 8888}]}, {name: b, image: nginx, ports: [{containerPort: 80, hostPort: 8888}]}]}`,
		want: []string{"containers: two ports publish the same hostPort and protocol"}},
	{name: "hostPort twice in a container", kind: kindWS, spec: `{` + ws + `, containers: [{name: a, image: busybox, ports: [{containerPort: 80, hostPort: 8080}, {containerPort: 81, hostPort: 8080}]}]}`,
		want: []string{"containers: two ports publish the same hostPort and protocol"}},
	{name: "env valueFrom", kind: kindWS, spec: `{` + wsCont + `, env: [{name: X, valueFrom: {secretKeyRef: {name: s, key: k}}}]}]}`, want: []string{"spec.containers[0].env", "env: only literal values are supported, not valueFrom"}},
	// XDrive: IOPS and keys.
	{name: "gp3 iops below 3000", kind: kindXD, spec: `{sizeGiB: 10, iops: 100}`, want: []string{"iops: must be 3000-80000 with volumeType gp3"}},
	{name: "kmsKeyID a name", kind: kindXD, spec: `{sizeGiB: 10, kmsKeyID: my-key}`, want: []string{"spec.kmsKeyID", "should match"}},
	{name: "kmsKeyID short key ID", kind: kindXD, spec: `{sizeGiB: 10, kmsKeyID: 1234abcd-12ab-34cd}`, want: []string{"spec.kmsKeyID", "should match"}},
	{name: "kmsKeyID an S3 ARN", kind: kindXD, spec: `{sizeGiB: 10, kmsKeyID: "arn:aws:s3:::bucket/key/1234abcd-12ab-34cd-56ef-1234567890ab"}`, want: []string{"spec.kmsKeyID", "should match"}},
	{name: "kmsKeyID ARN without account", kind: kindXD, spec: `{sizeGiB: 10, kmsKeyID: "arn:aws:kms:us-east-1::key/1234abcd-12ab-34cd-56ef-1234567890ab"}`, want: []string{"spec.kmsKeyID", "should match"}},
	{name: "kmsKeyID alias with a space", kind: kindXD, spec: `{sizeGiB: 10, kmsKeyID: "alias/my key"}`, want: []string{"spec.kmsKeyID", "should match"}},
	// Workstation: schedule (the cron expressions themselves are parsed by the operator).
	{name: "schedule start of 4 fields", kind: kindWS, spec: `{` + ws + `, schedule: {start: "0 9 * *", stop: "0 19 * * 1-5"}}`, want: []string{"spec.schedule.start", "start: must be a cron expression of 5 fields"}},
	{name: "schedule stop of 6 fields", kind: kindWS, spec: `{` + ws + `, schedule: {start: "0 9 * * 1-5", stop: "0 0 19 * * 1-5"}}`, want: []string{"spec.schedule.stop", "stop: must be a cron expression of 5 fields"}},
	{name: "schedule without a stop", kind: kindWS, spec: `{` + ws + `, schedule: {start: "0 9 * * 1-5"}}`, want: []string{"spec.schedule.stop", "Required value"}},
	{name: "schedule timeZone with a space", kind: kindWS, spec: `{` + ws + `, schedule: {timeZone: "Europe/Berlin x", start: "0 9 * * 1-5", stop: "0 19 * * 1-5"}}`, want: []string{"spec.schedule.timeZone", "should match"}},
}

// validCases are manifests next to the rules above that the API server must accept.
var validCases = []invalidCase{
	{name: "schedule", kind: kindWS, spec: `{` + ws + `, schedule: {timeZone: America/Argentina/Buenos_Aires, start: "0 9 * * 1-5", stop: "30  19 * * MON-FRI"}}`},
	{name: "schedule in UTC", kind: kindWS, spec: `{` + ws + `, schedule: {start: "*/15 8-9 1,15 * *", stop: "0 18 * * *"}}`},
	{name: "mountPath /data", kind: kindWS, spec: `{` + ws + `, mountPath: /data}`},
	{name: "mountPath /var/data", kind: kindWS, spec: `{` + ws + `, mountPath: /var/data}`},
	{name: "mountPath /etcetera", kind: kindWS, spec: `{` + ws + `, mountPath: /etcetera}`},
	{name: "hostPort once per protocol", kind: kindWS, spec: `{` + ws + `, containers: [{name: a, image: busybox, ports: [{containerPort: 53}]}, {name: b, image: nginx, ports: [{containerPort: 53, protocol: udp}]}]}`},
	{name: "two containers, two ports", kind: kindWS, spec: `{` + ws + `, containers: [{name: a, image: busybox, ports: [{containerPort: 8888}]}, {name: b, image: nginx, ports: [{containerPort: 8888, hostPort: 8889}]}]}`},
	{name: "kmsKeyID key ID", kind: kindXD, spec: `{sizeGiB: 10, kmsKeyID: 1234abcd-12ab-34cd-56ef-1234567890ab}`},
	{name: "kmsKeyID multi-Region key ID", kind: kindXD, spec: `{sizeGiB: 10, kmsKeyID: mrk-1234abcd12ab34cd56ef1234567890ab}`},
	{name: "kmsKeyID key ARN", kind: kindXD, spec: `{sizeGiB: 10, kmsKeyID: "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}`},
	{name: "kmsKeyID GovCloud key ARN", kind: kindXD, spec: `{sizeGiB: 10, kmsKeyID: "arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab"}`},
	{name: "kmsKeyID alias name", kind: kindXD, spec: `{sizeGiB: 10, kmsKeyID: alias/team/xdrive_key-1}`},
	{name: "kmsKeyID alias ARN", kind: kindXD, spec: `{sizeGiB: 10, kmsKeyID: "arn:aws:kms:eu-west-1:111122223333:alias/xdrive"}`},
	{name: "fork", kind: kindXD, spec: `{sizeGiB: 10, source: {xdrive: {name: gold}}}`},
	{name: "fork of another namespace", kind: kindXD, spec: `{sizeGiB: 10, source: {xdrive: {name: gold, namespace: team-a, snapshotID: snap-0123456789abcdef0}}}`},
	{name: "fork of a snapshot", kind: kindXD, spec: `{sizeGiB: 10, source: {xdrive: {name: team.gold, snapshotID: snap-0123456789abcdef0}}}`},
}

// TestValidManifestsAccepted: the rules refuse no valid neighbour of what they refuse.
func TestValidManifestsAccepted(t *testing.T) {
	e := sharedEnv(t)
	ns := CreateNamespace(t, e.Client)
	for i, tc := range validCases {
		t.Run(tc.kind+"/"+tc.name, func(t *testing.T) {
			if err := e.Client.Create(testCtx(t), newObject(t, tc.kind, ns, fmt.Sprintf("valid-%d", i), tc.spec)); err != nil {
				t.Fatalf("rejected: %v", err)
			}
		})
	}
}

func TestInvalidManifestsRejected(t *testing.T) {
	e := sharedEnv(t)
	ns := CreateNamespace(t, e.Client)
	if len(invalidCases) < 35 {
		t.Fatalf("only %d invalid cases, want at least 35", len(invalidCases))
	}
	for i, tc := range invalidCases {
		t.Run(tc.kind+"/"+tc.name, func(t *testing.T) {
			obj := newObject(t, tc.kind, ns, fmt.Sprintf("invalid-%d", i), tc.spec)
			assertInvalid(t, e.Client.Create(testCtx(t), obj), tc.want)
		})
	}
}

func assertInvalid(t *testing.T, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want rejection mentioning %q", want)
	}
	if !apierrors.IsInvalid(err) {
		t.Fatalf("want 422 Invalid, got %v", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not contain %q: %v", w, err)
		}
	}
}

// updateCase creates an object with spec from, then updates it to spec to.
type updateCase struct {
	name     string
	kind     string
	from, to string
	want     []string // nil: the update must be accepted
}

var updateCases = []updateCase{
	{name: "encrypted immutable", kind: kindXD, from: `{sizeGiB: 10}`, to: `{sizeGiB: 10, encrypted: false}`, want: []string{"spec.encrypted", "encrypted: immutable"}},
	{name: "kmsKeyID immutable", kind: kindXD, from: `{sizeGiB: 10, kmsKeyID: alias/a}`, to: `{sizeGiB: 10, kmsKeyID: alias/b}`, want: []string{"spec.kmsKeyID", "kmsKeyID: immutable"}},
	{name: "kmsKeyID added later", kind: kindXD, from: `{sizeGiB: 10}`, to: `{sizeGiB: 10, kmsKeyID: alias/a}`, want: []string{"kmsKeyID: immutable once set, and cannot be added later"}},
	{name: "kmsKeyID removed", kind: kindXD, from: `{sizeGiB: 10, kmsKeyID: alias/a}`, to: `{sizeGiB: 10}`, want: []string{"kmsKeyID: immutable once set"}},
	{name: "filesystem immutable", kind: kindXD, from: `{sizeGiB: 10}`, to: `{sizeGiB: 10, filesystem: xfs}`, want: []string{"spec.filesystem", "filesystem: immutable"}},
	{name: "source immutable", kind: kindXD, from: `{sizeGiB: 10, source: {nameTag: home}}`, to: `{sizeGiB: 10, source: {nameTag: work}}`, want: []string{"spec.source", "source: immutable"}},
	{name: "source snapshotID to nameTag", kind: kindXD, from: `{sizeGiB: 10, source: {snapshotID: snap-0123456789abcdef0}}`, to: `{sizeGiB: 10, source: {nameTag: home}}`, want: []string{"spec.source", "source: immutable"}},
	{name: "source added later", kind: kindXD, from: `{sizeGiB: 10}`, to: `{sizeGiB: 10, source: {nameTag: home}}`, want: []string{"source: immutable once set, and cannot be added later"}},
	{name: "source removed", kind: kindXD, from: `{sizeGiB: 10, source: {nameTag: home}}`, to: `{sizeGiB: 10}`, want: []string{"source: immutable once set"}},
	{name: "sizeGiB shrink", kind: kindXD, from: `{sizeGiB: 100}`, to: `{sizeGiB: 50}`, want: []string{"spec.sizeGiB", "sizeGiB: may grow, never shrink"}},
	{name: "sizeGiB grow", kind: kindXD, from: `{sizeGiB: 100}`, to: `{sizeGiB: 200}`},
	{name: "sizeGiB grow with other changes", kind: kindXD, from: `{sizeGiB: 100, kmsKeyID: alias/a, source: {nameTag: home}}`, to: `{sizeGiB: 120, kmsKeyID: alias/a, source: {nameTag: home}, snapshotRetention: 3, deletionPolicy: Delete}`},
	{name: "prewarm on", kind: kindXD, from: `{sizeGiB: 10}`, to: `{sizeGiB: 10, prewarm: true}`},
	{name: "prewarm off beside a rate", kind: kindXD, from: `{sizeGiB: 10, initializationRateMiBps: 300}`, to: `{sizeGiB: 10, initializationRateMiBps: 300, prewarm: false}`},
	{name: "prewarm added to a rate", kind: kindXD, from: `{sizeGiB: 10, initializationRateMiBps: 300}`, to: `{sizeGiB: 10, initializationRateMiBps: 300, prewarm: true}`, want: []string{"prewarm: not allowed with initializationRateMiBps"}},
	{name: "rate added to prewarm", kind: kindXD, from: `{sizeGiB: 10, prewarm: true}`, to: `{sizeGiB: 10, prewarm: true, initializationRateMiBps: 100}`, want: []string{"prewarm: not allowed with initializationRateMiBps"}},
	{name: "driveRef change while Running", kind: kindWS, from: `{driveRef: {name: a}, instanceTypes: [t3.large]}`, to: `{driveRef: {name: b}, instanceTypes: [t3.large]}`, want: []string{"driveRef: may change only while state is Stopped"}},
	{name: "driveRef change while stopping", kind: kindWS, from: `{driveRef: {name: a}, instanceTypes: [t3.large]}`, to: `{driveRef: {name: b}, instanceTypes: [t3.large], state: Stopped}`, want: []string{"driveRef: may change only while state is Stopped"}},
	{name: "driveRef change while starting", kind: kindWS, from: `{driveRef: {name: a}, instanceTypes: [t3.large], state: Stopped}`, to: `{driveRef: {name: b}, instanceTypes: [t3.large], state: Running}`, want: []string{"driveRef: may change only while state is Stopped"}},
	{name: "driveRef change while Stopped", kind: kindWS, from: `{driveRef: {name: a}, instanceTypes: [t3.large], state: Stopped}`, to: `{driveRef: {name: b}, instanceTypes: [t3.large], state: Stopped}`},
	{name: "Running to Stopped", kind: kindWS, from: `{driveRef: {name: a}, instanceTypes: [t3.large]}`, to: `{driveRef: {name: a}, instanceTypes: [g5.xlarge], state: Stopped}`},
}

func TestUpdateRules(t *testing.T) {
	e := sharedEnv(t)
	ns := CreateNamespace(t, e.Client)
	for i, tc := range updateCases {
		t.Run(tc.kind+"/"+tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			obj := newObject(t, tc.kind, ns, fmt.Sprintf("update-%d", i), tc.from)
			if err := e.Client.Create(ctx, obj); err != nil {
				t.Fatalf("create: %v", err)
			}
			setSpec(t, obj, tc.to)
			err := e.Client.Update(ctx, obj)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("update rejected: %v", err)
				}
				return
			}
			assertInvalid(t, err, tc.want)
		})
	}
}

func TestDefaults(t *testing.T) {
	e := sharedEnv(t)
	ns := CreateNamespace(t, e.Client)
	ctx := testCtx(t)

	xd := newObject(t, kindXD, ns, "home", `{sizeGiB: 10}`)
	if err := e.Client.Create(ctx, xd); err != nil {
		t.Fatal(err)
	}
	var drive xdrivev1alpha1.XDrive
	if err := e.Client.Get(ctx, client.ObjectKeyFromObject(xd), &drive); err != nil {
		t.Fatal(err)
	}
	s := drive.Spec
	check(t, "volumeType", s.VolumeType, xdrivev1alpha1.VolumeTypeGP3)
	check(t, "encrypted", s.Encrypted != nil && *s.Encrypted, true)
	check(t, "filesystem", s.Filesystem, xdrivev1alpha1.FilesystemExt4)
	check(t, "deletionPolicy", s.DeletionPolicy, xdrivev1alpha1.DeletionPolicyRetain)

	wsObj := newObject(t, kindWS, ns, "dev", `{driveRef: {name: home}, instanceTypes: [t3.large], containers: [{name: app, image: busybox, ports: [{containerPort: 80}]}]}`)
	if err := e.Client.Create(ctx, wsObj); err != nil {
		t.Fatal(err)
	}
	var w xdrivev1alpha1.Workstation
	if err := e.Client.Get(ctx, client.ObjectKeyFromObject(wsObj), &w); err != nil {
		t.Fatal(err)
	}
	check(t, "capacityType", w.Spec.CapacityType, xdrivev1alpha1.CapacityTypeSpot)
	check(t, "state", w.Spec.State, xdrivev1alpha1.WorkstationStateRunning)
	check(t, "mountPath", w.Spec.MountPath, "/v1")
	check(t, "interruptionPolicy", w.Spec.InterruptionPolicy, xdrivev1alpha1.InterruptionPolicyRelaunch)
	check(t, "rebalancePolicy", w.Spec.RebalancePolicy, xdrivev1alpha1.RebalancePolicyIgnore)
	check(t, "containers[0].gpus", w.Spec.Containers[0].GPUs, xdrivev1alpha1.GPUModeAuto)
	check(t, "containers[0].ports[0].protocol", w.Spec.Containers[0].Ports[0].Protocol, "tcp")
	check(t, "reattachPriceTolerancePercent", w.Spec.ReattachPriceTolerancePercent != nil && *w.Spec.ReattachPriceTolerancePercent == 20, true)
	if s.KeepVolumeForMinutes != 0 || s.InitializationRateMiBps != 0 {
		t.Errorf("keepVolumeForMinutes %d, initializationRateMiBps %d; want both unset", s.KeepVolumeForMinutes, s.InitializationRateMiBps)
	}
	if w.Spec.OnDemandFallback != nil {
		t.Errorf("onDemandFallback = %v, want unset", *w.Spec.OnDemandFallback)
	}
}

func check[T comparable](t *testing.T, field string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", field, got, want)
	}
}
