"""Pulumi components for paired-region Kafka on AWS (one file per concept).

    config.py        typed stack config (kdrill:* keys) and its errors
    tags.py          cost tags, which resources are taggable, the tag transform
    mocks.py         the program under Pulumi's mocks (unit tests, `kdrill run --plan`)
    network.py       RegionNetwork: VPC, subnets, NACLs (region-loss faults), broker SG, S3 endpoint
    interregion.py   InterRegionLink: VPC peering or transit-gateway peering
    storage.py       SecureBucket: versioned, encrypted, private, lifecycle, replication
    brokers.py       BrokerFleet: EC2 brokers, EBS log/WAL volumes, instance state (stop faults)
    msk.py           MskCluster: Amazon MSK with TLS, KMS at rest, IAM auth
    apache.py        ApacheKafkaCluster: KRaft on EC2
    automq.py        AutoMQCluster: AutoMQ on EC2 with S3 data/ops buckets and its WAL
    privatelink.py   PrivateLink (NLB endpoint service) and MskPrivateConnectivity
    replication.py   MskReplicator; the AutoMQ linking note
    faults.py        the fault switch plan and the FIS cross-region experiment
    paired.py        PairedRegionKafka: all of the above for primary + standby
    program.py       the Pulumi program body (__main__.py calls it)

MirrorMaker 2 on Kubernetes lives in components/kubernetes/mirrormaker2.py.
"""
