# A role assignment of User Access Administrator (built-in role
# 18d7d88d-d35e-4fb5-a5c3-7773c20a72d9), which can grant any role, Owner included, to
# anyone. Prowler iam_role_user_access_admin_restricted. Such standing assignments are
# typically left over from "Elevate access" (scope "/") or break-glass work; grant it
# just-in-time (Privileged Identity Management) instead. One finding per assignment.
# Assignments with an ABAC condition (which restrict which roles may be granted, the
# documented way to delegate it safely) are not reported.
package scanledger.rules.identity.user_access_administrator_assigned

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-IAM-002",
	"title": "User Access Administrator role is assigned without conditions",
	"severity": "medium",
	"category": "identity",
	"resource_types": ["Microsoft.Authorization/roleAssignments"],
	"frameworks": {
		"nist_csf": ["PR.AC-4"],
		"iso27001": ["A.5.15", "A.8.2"],
	},
	"description": "A principal holds User Access Administrator without a condition limiting which roles it may assign, so it can give itself or anyone else Owner on the scope. Reads Microsoft.Authorization/roleAssignments 2022-04-01 `properties.roleDefinitionId`, `scope`, `principalType` and `condition`.",
	"remediation": {
		"portal": "Access control (IAM) at the assignment's scope > Role assignments > User Access Administrator > remove it, or replace it with an eligible (PIM) assignment or one with a condition (Role Based Access Control Administrator with constrained roles).",
		"cli": "az role assignment delete --ids <assignment-id>",
	},
}

uaa(r) if endswith(lower(lib.prop(r, ["roleDefinitionId"], "") ), "/18d7d88d-d35e-4fb5-a5c3-7773c20a72d9")

conditioned(r) if {
	c := lib.prop(r, ["condition"], null)
	is_string(c)
	trim_space(c) != ""
}

deny contains lib.finding(r, "", {
	"scope": lib.prop(r, ["scope"], null),
	"principalId": lib.prop(r, ["principalId"], null),
	"principalType": lib.prop(r, ["principalType"], null),
}) if {
	some r in input.resources
	is_string(lib.prop(r, ["roleDefinitionId"], null))
	uaa(r)
	not conditioned(r)
}

indeterminate contains lib.undecided(r, "the role assignment names no role definition") if {
	some r in input.resources
	not is_string(lib.prop(r, ["roleDefinitionId"], null))
}
