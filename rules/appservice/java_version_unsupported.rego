# App Service app running a Java version App Service and its JDK vendors no longer support
# (CIS v2.1.0 9.7 / v3.0.0 9.9). Java 8, 11, 17 and 21 are supported (Microsoft Build of
# OpenJDK and Eclipse Temurin builds, as of 30 November 2026), so only Java 7 and older
# ("1.7") fire. Reads config/web `linuxFxVersion` ("JAVA|17-java17",
# "TOMCAT|10.1-java17": the JRE after -java) or the Windows `javaVersion` ("1.8", "17").
package scanledger.rules.appservice.java_version_unsupported

import data.scanledger.lib
import data.scanledger.lib.appservice
import rego.v1

metadata := {
	"id": "AZ-APP-015",
	"title": "App Service app runs an unsupported Java version",
	"severity": "medium",
	"category": "appservice",
	"resource_types": ["Microsoft.Web/sites", "Microsoft.Web/sites/slots"],
	"frameworks": {
		"cis_azure": ["9.7"],
		"cis_v3": ["9.9"],
		"nist_csf": ["PR.IP-12", "ID.RA-1"],
		"iso27001": ["A.8.8"],
	},
	"description": "The app runs a Java version that no longer receives security fixes on App Service. Reads Microsoft.Web/sites/config (web) 2023-12-01 `properties.linuxFxVersion` and `properties.javaVersion`.",
	"remediation": {
		"portal": "App Service > Settings > Configuration > General settings > Stack settings > Java version: 8 or later > Save (test the app first).",
		"cli": "az webapp config set --resource-group <rg> --name <app> --java-version 17 --java-container Tomcat --java-container-version 10.1",
	},
	"related": {"config/web": "2023-12-01"},
}

version(r) := appservice.stack_version(r, "java")

# java_number(v): Java's version as a number: "1.7" and "1.8" are Java 7 and 8 (700, 800),
# "11", "17.0" are 1100, 1700.
java_number(v) := n if {
	n1 := appservice.version_number(v)
	n1 >= 100
	n1 < 200
	n := (n1 - 100) * 100
}

java_number(v) := n if {
	n := appservice.version_number(v)
	n >= 200
}

deny contains lib.finding(r, "", {"version": version(r), "linuxFxVersion": appservice.get(appservice.config(r), ["linuxFxVersion"]), "oldestSupported": "8"}) if {
	some r in input.resources
	appservice.has_config(r)
	version(r)
	n := java_number(version(r))
	n < 800
}

indeterminate contains lib.undecided(r, "the site configuration (config/web) was not fetched") if {
	some r in input.resources
	appservice.config_unknown(r)
}
