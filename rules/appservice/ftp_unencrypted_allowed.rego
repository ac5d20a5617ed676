# Plain (unencrypted) FTP allowed: config/web ftpsState "AllAllowed". Absent is treated
# as AllAllowed, App Service's historical default (FTP and FTPS both on). FtpsOnly and
# Disabled pass. Near miss: with FTP basic authentication disabled
# (basicPublishingCredentialsPolicies/ftp allow=false) nobody can log in over FTP at all
# (FTP only supports those credentials), so the site passes. Indeterminate when config/web
# was not fetched, or FTP is AllAllowed and the FTP credentials policy was not fetched.
# Applies to function apps too (same deployment endpoints).
package scanledger.rules.appservice.ftp_unencrypted_allowed

import data.scanledger.lib
import data.scanledger.lib.appservice
import rego.v1

metadata := {
	"id": "AZ-APP-004",
	"title": "App Service app allows unencrypted FTP deployment",
	"severity": "medium",
	"category": "appservice",
	"resource_types": ["Microsoft.Web/sites", "Microsoft.Web/sites/slots"],
	"frameworks": {
		"cis_azure": ["9.9"],
		"cis_v3": ["9.3"],
		"nist_csf": ["PR.DS-2"],
		"iso27001": ["A.8.24"],
	},
	"description": "The app's FTP state is All allowed and FTP logins are permitted, so deployment credentials and site content can cross the network in clear text over plain FTP.",
	"remediation": {
		"portal": "App Service > Settings > Configuration > General settings > FTP state: FTPS only (or Disabled if FTP is not used) > Save.",
		"cli": "az webapp config set --resource-group <rg> --name <app> --ftps-state FtpsOnly",
	},
	"related": {
		"config/web": "2023-12-01",
		"basicPublishingCredentialsPolicies/ftp": "2023-12-01",
	},
}

ftp_all_allowed(r) if {
	appservice.has_config(r)
	state := appservice.lc(appservice.get(appservice.config(r), ["ftpsState"]))
	state in {"allallowed", ""}
}

deny contains lib.finding(r, "", {"ftpsState": appservice.get(appservice.config(r), ["ftpsState"]), "ftpBasicAuth": "allowed"}) if {
	some r in input.resources
	ftp_all_allowed(r)
	appservice.basic_auth_allowed(r, "ftp")
}

indeterminate contains lib.undecided(r, "the site configuration (config/web) was not fetched") if {
	some r in input.resources
	appservice.config_unknown(r)
}

indeterminate contains lib.undecided(r, "FTP is All allowed but the FTP credentials policy was not fetched") if {
	some r in input.resources
	ftp_all_allowed(r)
	appservice.basic_auth_unknown(r, "ftp")
}
