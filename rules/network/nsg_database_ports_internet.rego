# Database, cache and search-engine ports open to the internet through an NSG. These
# services are meant for application tiers inside the network; exposed, they are found
# by mass scanners within hours (ransomed MongoDB/Elasticsearch, Redis RCE). One finding
# per NSG rule, listing every such port it opens.
package scanledger.rules.network.nsg_database_ports_internet

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-005",
	"title": "Network security group exposes database ports to the internet",
	"severity": "high",
	"category": "network",
	"resource_types": ["Microsoft.Network/networkSecurityGroups"],
	"frameworks": {
		"nist_csf": ["PR.AC-5", "PR.PT-3"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "An inbound Allow rule lets any internet address reach a database, cache or search engine port (SQL Server 1433/1434, MySQL 3306, PostgreSQL 5432, Oracle 1521, MongoDB 27017, Redis 6379, Elasticsearch 9200/9300, CouchDB 5984, Cassandra 9042, Memcached 11211). Data stores should only be reachable from the application tier or through private endpoints.",
	"remediation": {
		"portal": "Network security group > Inbound security rules > restrict the rule's source to the application subnets or known addresses, or delete it and reach the database through a private endpoint, VPN or Bastion.",
		"cli": "az network nsg rule update --resource-group <rg> --nsg-name <nsg> --name <rule> --source-address-prefixes <app-subnet-cidr>",
	},
}

services := [
	{"port": 1433, "protos": {"tcp"}, "service": "SQL Server"},
	{"port": 1434, "protos": {"udp"}, "service": "SQL Server Browser"},
	{"port": 3306, "protos": {"tcp"}, "service": "MySQL/MariaDB"},
	{"port": 5432, "protos": {"tcp"}, "service": "PostgreSQL"},
	{"port": 1521, "protos": {"tcp"}, "service": "Oracle"},
	{"port": 27017, "protos": {"tcp"}, "service": "MongoDB"},
	{"port": 6379, "protos": {"tcp"}, "service": "Redis"},
	{"port": 9200, "protos": {"tcp"}, "service": "Elasticsearch/OpenSearch HTTP"},
	{"port": 9300, "protos": {"tcp"}, "service": "Elasticsearch transport"},
	{"port": 5984, "protos": {"tcp"}, "service": "CouchDB"},
	{"port": 9042, "protos": {"tcp"}, "service": "Cassandra"},
	{"port": 11211, "protos": {"tcp"}, "service": "Memcached"},
]

deny contains lib.finding(r, x.rule, x) if {
	some r in input.resources
	some x in nw.exposures(r, services)
}
