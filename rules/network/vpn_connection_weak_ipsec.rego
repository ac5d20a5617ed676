# VPN connections whose custom IPsec/IKE policy allows broken or deprecated algorithms:
# DES/3DES or no encryption, MD5 integrity, Diffie-Hellman groups 1 and 2 (768/1024-bit)
# for IKE or PFS. SHA1 is not flagged (HMAC-SHA1 is still acceptable). Connections
# without `ipsecPolicies` use Azure's default proposals and are not judged here.
package scanledger.rules.network.vpn_connection_weak_ipsec

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-NET-015",
	"title": "VPN connection IPsec policy uses weak cryptography",
	"severity": "medium",
	"category": "network",
	"resource_types": ["Microsoft.Network/connections"],
	"frameworks": {
		"nist_csf": ["PR.DS-2"],
		"iso27001": ["A.8.24"],
	},
	"description": "The connection's custom IPsec/IKE policy includes a weak algorithm: DES or 3DES encryption, no IPsec encryption at all, MD5 integrity, or Diffie-Hellman/PFS group 1 or 2. Traffic or key exchange can be broken or downgraded.",
	"remediation": {
		"portal": "Connection > Configuration > IPsec / IKE policy: Custom > choose AES256 or GCMAES256, SHA256 or better, DH group 14/ECP256 or stronger and a matching PFS group > Save (update the on-premises device to match).",
		"cli": "az network vpn-connection ipsec-policy add --resource-group <rg> --connection-name <connection> --ike-encryption AES256 --ike-integrity SHA256 --dh-group DHGroup14 --ipsec-encryption GCMAES256 --ipsec-integrity GCMAES256 --pfs-group PFS2048 --sa-lifetime 27000 --sa-max-size 102400000",
	},
}

# Field -> the lower-case values that are weak.
weak := {
	"ikeEncryption": {"des", "des3"},
	"ipsecEncryption": {"none", "des", "des3"},
	"ikeIntegrity": {"md5"},
	"ipsecIntegrity": {"md5"},
	"dhGroup": {"dhgroup1", "dhgroup2"},
	"pfsGroup": {"pfs1", "pfs2"},
}

deny contains lib.finding(r, "", {"weak_settings": found}) if {
	some r in input.resources
	policies := lib.as_list(lib.prop(r, ["ipsecPolicies"], []))
	found := sort({w |
		some policy in policies
		is_object(policy)
		some field, bad in weak
		v := object.get(policy, field, "")
		is_string(v)
		lower(v) in bad
		w := {"field": field, "value": v}
	})
	count(found) > 0
}
