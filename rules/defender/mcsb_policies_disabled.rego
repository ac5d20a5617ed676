# The Microsoft cloud security benchmark assignment Defender for Cloud manages (policy
# assignment SecurityCenterBuiltIn, "ASC Default", of initiative 1f3afdf9-...-89da613e70a8)
# is not enforced (enforcementMode DoNotEnforce) or sets policies' effect parameters to
# Disabled (CIS v2.1.0 2.1.13 / v3.0.0 3.1.11 "Microsoft Cloud Security Benchmark policies
# are not set to 'Disabled'"). Other assignments are not judged.
package scanledger.rules.defender.mcsb_policies_disabled

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-DEF-026",
	"title": "Microsoft cloud security benchmark policies are disabled",
	"severity": "medium",
	"category": "defender",
	"resource_types": ["Microsoft.Authorization/policyAssignments"],
	"frameworks": {
		"cis_azure": ["2.1.13"],
		"cis_v3": ["3.1.11"],
		"nist_csf": ["ID.GV-1", "DE.CM-8"],
		"iso27001": ["A.5.36"],
	},
	"description": "The Defender for Cloud default assignment of the Microsoft cloud security benchmark is not enforced or disables some of its policies, so the corresponding recommendations are not produced and their resources look compliant. Reads Microsoft.Authorization/policyAssignments 2022-06-01 `properties.enforcementMode` and `properties.parameters` of the assignment named SecurityCenterBuiltIn.",
	"remediation": {
		"portal": "Microsoft Defender for Cloud > Environment settings > the subscription > Security policies > Microsoft cloud security benchmark > set disabled recommendations back to their default effect; Policy > Assignments > ASC Default > Edit > Policy enforcement: Enabled.",
		"cli": "az policy assignment update --name SecurityCenterBuiltIn --scope /subscriptions/<sub> --enforcement-mode Default",
	},
}

mcsb(r) if {
	platform.subscription_scoped(r, `microsoft\.authorization/policyassignments`)
	lower(platform.last_segment(r.id)) == "securitycenterbuiltin"
}

disabled_parameters(r) := sort([name |
	some name, p in lib.obj(lib.prop(r, ["parameters"], {}))
	platform.str_eq(object.get(lib.obj(p), "value", null), "Disabled")
])

not_enforced(r) if platform.str_eq(lib.prop(r, ["enforcementMode"], "Default"), "DoNotEnforce")

deny contains lib.finding(r, "", {
	"enforcementMode": lib.prop(r, ["enforcementMode"], null),
	"disabledParameters": disabled_parameters(r),
}) if {
	some r in input.resources
	mcsb(r)
	not_enforced(r)
}

deny contains lib.finding(r, "", {
	"enforcementMode": lib.prop(r, ["enforcementMode"], null),
	"disabledParameters": disabled_parameters(r),
}) if {
	some r in input.resources
	mcsb(r)
	not not_enforced(r)
	count(disabled_parameters(r)) > 0
}

indeterminate contains lib.undecided(r, "the assignment document carries no properties") if {
	some r in input.resources
	mcsb(r)
	lib.no_properties(r)
}
