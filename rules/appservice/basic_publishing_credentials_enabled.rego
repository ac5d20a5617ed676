# Basic (username/password) publishing credentials allowed, from the related
# basicPublishingCredentialsPolicies/scm and /ftp documents (properties.allow). A policy
# document that does not exist (null) falls back to Azure's default, which allows basic
# authentication. One finding per endpoint, sub_item "scm" (Kudu, zip/web deploy) or "ftp".
# Near miss: FTP credentials allowed while FTP itself is Disabled (config/web ftpsState)
# cannot be used, so "ftp" passes. Indeterminate when a policy was not fetched, or when
# FTP basic auth is allowed and config/web was not fetched. Applies to function apps too.
package scanledger.rules.appservice.basic_publishing_credentials_enabled

import data.scanledger.lib
import data.scanledger.lib.appservice
import rego.v1

metadata := {
	"id": "AZ-APP-011",
	"title": "App Service app allows basic authentication for deployment",
	"severity": "medium",
	"category": "appservice",
	"resource_types": ["Microsoft.Web/sites", "Microsoft.Web/sites/slots"],
	"frameworks": {
		"cis_v3": ["9.6"],
		"nist_csf": ["PR.AC-1", "PR.AC-7"],
		"iso27001": ["A.5.17", "A.8.5"],
	},
	"description": "The app accepts basic-authentication publishing credentials (a static username and password, or the publish profile) for SCM/Kudu or FTP deployment. They bypass Microsoft Entra ID, MFA and Conditional Access, and anyone who obtains the publish profile can deploy code to the app.",
	"remediation": {
		"portal": "App Service > Settings > Configuration > General settings > Platform settings > SCM Basic Auth Publishing Credentials: Off and FTP Basic Auth Publishing Credentials: Off > Save.",
		"cli": "az resource update --resource-group <rg> --name scm --namespace Microsoft.Web --resource-type basicPublishingCredentialsPolicies --parent sites/<app> --set properties.allow=false",
	},
	"related": {
		"basicPublishingCredentialsPolicies/scm": "2023-12-01",
		"basicPublishingCredentialsPolicies/ftp": "2023-12-01",
		"config/web": "2023-12-01",
	},
}

allow_value(r, kind) := appservice.get(lib.related(r, appservice.pub_path(kind)), ["properties", "allow"])

ftp_disabled(r) if {
	appservice.has_config(r)
	appservice.lc(appservice.get(appservice.config(r), ["ftpsState"])) == "disabled"
}

deny contains lib.finding(r, "scm", {"allow": allow_value(r, "scm")}) if {
	some r in input.resources
	appservice.basic_auth_allowed(r, "scm")
}

deny contains lib.finding(r, "ftp", {"allow": allow_value(r, "ftp"), "ftpsState": appservice.get(appservice.config(r), ["ftpsState"])}) if {
	some r in input.resources
	appservice.basic_auth_allowed(r, "ftp")
	appservice.has_config(r)
	not ftp_disabled(r)
}

indeterminate contains lib.undecided(r, sprintf("the %s publishing credentials policy was not fetched", [kind])) if {
	some r in input.resources
	some kind in ["scm", "ftp"]
	appservice.basic_auth_unknown(r, kind)
}

indeterminate contains lib.undecided(r, "FTP basic authentication is allowed but the site configuration (config/web) was not fetched") if {
	some r in input.resources
	appservice.basic_auth_allowed(r, "ftp")
	appservice.config_unknown(r)
}
