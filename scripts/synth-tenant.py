#!/usr/bin/env python3
"""Generate a synthetic Azure tenant as ARM JSON, one resource per line (.jsonl).

    python3 scripts/synth-tenant.py 100000 target/synth/tenant-100k.jsonl

Deterministic (fixed seed): the same count gives the same file. The mix of types and of
good and bad settings imitates a large enterprise subscription; the documents have the
shape the Azure source produces, including `related` child documents.
Subscription: 5b9c0a39-2f4e-4d7a-8c1b-3e6f9a2d7c41.
"""

import json
import random
import sys

SUB = "5b9c0a39-2f4e-4d7a-8c1b-3e6f9a2d7c41"
LOCATIONS = ["westeurope", "northeurope", "eastus", "eastus2", "uksouth"]


def rid(rg, provider, name):
    return f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/{provider}/{name}"


def base(rnd, i, provider, prefix):
    rg = f"rg-{i % 97:02d}"
    name = f"{prefix}{i:06d}"
    return {
        "id": rid(rg, provider, name),
        "name": name,
        "type": provider,
        "location": rnd.choice(LOCATIONS),
        "tags": {"env": rnd.choice(["prod", "dev", "test"]), "owner": f"team-{i % 13}"},
    }


def bad(rnd, p=0.15):
    return rnd.random() < p


def storage(rnd, i):
    r = base(rnd, i, "Microsoft.Storage/storageAccounts", "st")
    r["kind"] = "StorageV2"
    r["sku"] = {"name": rnd.choice(["Standard_LRS", "Standard_GRS", "Standard_RAGRS", "Standard_ZRS"]), "tier": "Standard"}
    r["properties"] = {
        "supportsHttpsTrafficOnly": not bad(rnd, 0.05),
        "allowBlobPublicAccess": bad(rnd, 0.2),
        "minimumTlsVersion": "TLS1_0" if bad(rnd, 0.1) else "TLS1_2",
        "allowSharedKeyAccess": bad(rnd, 0.5),
        "publicNetworkAccess": "Enabled",
        "networkAcls": {"defaultAction": "Allow" if bad(rnd, 0.4) else "Deny", "bypass": "AzureServices",
                        "ipRules": [], "virtualNetworkRules": []},
        "encryption": {"keySource": "Microsoft.Storage", "requireInfrastructureEncryption": bad(rnd, 0.7) is False,
                       "services": {"blob": {"enabled": True}, "file": {"enabled": True}}},
        "allowCrossTenantReplication": bad(rnd, 0.1),
        "provisioningState": "Succeeded",
    }
    r["related"] = {
        "blobServices/default": {"name": "default", "properties": {
            "deleteRetentionPolicy": {"enabled": not bad(rnd, 0.3), "days": 7},
            "containerDeleteRetentionPolicy": {"enabled": not bad(rnd, 0.3), "days": 7},
            "isVersioningEnabled": not bad(rnd, 0.5)}},
        "managementPolicies/default": None if bad(rnd, 0.4) else {"name": "DefaultManagementPolicy", "properties": {"policy": {"rules": []}}},
    }
    return r


def nsg_rule(rnd, n):
    port = rnd.choice(["22", "3389", "443", "80", "1433", "8080-8090", "*", "20-30", "5432"])
    src = rnd.choice(["*", "Internet", "10.0.0.0/8", "VirtualNetwork", "203.0.113.0/24", "0.0.0.0/0"])
    props = {
        "protocol": rnd.choice(["Tcp", "Udp", "*"]),
        "sourcePortRange": "*",
        "destinationAddressPrefix": "*",
        "access": "Allow" if rnd.random() < 0.8 else "Deny",
        "priority": 100 + 10 * n,
        "direction": "Inbound" if rnd.random() < 0.8 else "Outbound",
    }
    if rnd.random() < 0.2:
        props["destinationPortRanges"] = [port, "443"]
    else:
        props["destinationPortRange"] = port
    if rnd.random() < 0.2:
        props["sourceAddressPrefixes"] = [src, "192.168.0.0/16"]
    else:
        props["sourceAddressPrefix"] = src
    return {"name": f"rule-{n}", "properties": props}


def nsg(rnd, i):
    r = base(rnd, i, "Microsoft.Network/networkSecurityGroups", "nsg")
    # Mostly internal rules; an internet exposure in a minority of groups.
    rules = []
    for n in range(rnd.randint(0, 6)):
        rule = nsg_rule(rnd, n)
        if rnd.random() < 0.85:
            p = rule["properties"]
            p.pop("sourceAddressPrefixes", None)
            p["sourceAddressPrefix"] = "10.0.0.0/8"
        rules.append(rule)
    r["properties"] = {"securityRules": rules, "flowLogs": [] if bad(rnd, 0.5) else [{"id": r["id"] + "/fl"}]}
    return r


def vnet(rnd, i):
    r = base(rnd, i, "Microsoft.Network/virtualNetworks", "vnet")
    subnets = []
    for n in range(rnd.randint(1, 5)):
        s = {"name": rnd.choice(["default", "app", "data", "GatewaySubnet", "AzureBastionSubnet"]) + (f"-{n}" if n else ""),
             "properties": {"addressPrefix": f"10.{i % 250}.{n}.0/24"}}
        if not bad(rnd, 0.2):
            s["properties"]["networkSecurityGroup"] = {"id": rid("rg-net", "Microsoft.Network/networkSecurityGroups", "nsg-x")}
        subnets.append(s)
    r["properties"] = {"addressSpace": {"addressPrefixes": [f"10.{i % 250}.0.0/16"]}, "subnets": subnets,
                       "enableDdosProtection": not bad(rnd, 0.8)}
    return r


def nic(rnd, i):
    r = base(rnd, i, "Microsoft.Network/networkInterfaces", "nic")
    ipc = {"name": "ipconfig1", "properties": {"privateIPAddress": f"10.0.{i % 250}.{i % 200 + 4}"}}
    if bad(rnd, 0.1):
        ipc["properties"]["publicIPAddress"] = {"id": rid("rg-net", "Microsoft.Network/publicIPAddresses", f"pip{i}")}
    r["properties"] = {"ipConfigurations": [ipc]}
    if not bad(rnd, 0.5):
        r["properties"]["networkSecurityGroup"] = {"id": rid("rg-net", "Microsoft.Network/networkSecurityGroups", "nsg-x")}
    return r


def pip(rnd, i):
    r = base(rnd, i, "Microsoft.Network/publicIPAddresses", "pip")
    r["sku"] = {"name": "Standard"}
    r["properties"] = {"publicIPAllocationMethod": "Static", "ipAddress": f"20.{i % 250}.{i % 200}.{i % 100}"}
    if not bad(rnd, 0.2):
        r["properties"]["ipConfiguration"] = {"id": rid("rg-net", "Microsoft.Network/networkInterfaces", f"nic{i}") + "/ipConfigurations/ipconfig1"}
    return r


def vm(rnd, i):
    r = base(rnd, i, "Microsoft.Compute/virtualMachines", "vm")
    linux = rnd.random() < 0.7
    os_profile = {"computerName": r["name"], "adminUsername": "azureuser"}
    if linux:
        os_profile["linuxConfiguration"] = {"disablePasswordAuthentication": not bad(rnd, 0.2),
                                            "patchSettings": {"patchMode": "AutomaticByPlatform" if not bad(rnd, 0.4) else "ImageDefault"}}
    else:
        os_profile["windowsConfiguration"] = {"patchSettings": {"patchMode": "AutomaticByPlatform" if not bad(rnd, 0.4) else "Manual"}}
    r["properties"] = {
        "hardwareProfile": {"vmSize": "Standard_D4s_v5"},
        "osProfile": os_profile,
        "storageProfile": {"osDisk": {"osType": "Linux" if linux else "Windows", "managedDisk": {"id": r["id"] + "-osdisk"}}},
        "securityProfile": {"securityType": "TrustedLaunch", "uefiSettings": {"secureBootEnabled": True, "vTpmEnabled": True}} if not bad(rnd, 0.5) else None,
        "diagnosticsProfile": {"bootDiagnostics": {"enabled": True}},
    }
    if r["properties"]["securityProfile"] is None:
        del r["properties"]["securityProfile"]
    if not bad(rnd, 0.3):
        r["identity"] = {"type": "SystemAssigned"}
    ext = [] if bad(rnd, 0.3) else [{"name": "MDE.Linux" if linux else "MDE.Windows",
                                     "properties": {"publisher": "Microsoft.Azure.AzureDefenderForServers", "type": "MDE.Linux" if linux else "MDE.Windows"}}]
    r["related"] = {"extensions": ext}
    return r


def disk(rnd, i):
    r = base(rnd, i, "Microsoft.Compute/disks", "disk")
    r["sku"] = {"name": "Premium_LRS"}
    r["properties"] = {"diskSizeGB": 128, "diskState": "Attached" if not bad(rnd, 0.2) else "Unattached",
                       "encryption": {"type": "EncryptionAtRestWithPlatformKey"},
                       "networkAccessPolicy": "AllowAll" if bad(rnd, 0.3) else "DenyAll",
                       "publicNetworkAccess": "Enabled" if bad(rnd, 0.3) else "Disabled"}
    return r


def sql(rnd, i):
    r = base(rnd, i, "Microsoft.Sql/servers", "sql")
    r["properties"] = {"version": "12.0", "publicNetworkAccess": "Enabled" if bad(rnd, 0.5) else "Disabled",
                       "minimalTlsVersion": "1.0" if bad(rnd, 0.1) else "1.2",
                       "administrators": {"azureADOnlyAuthentication": not bad(rnd, 0.5), "administratorType": "ActiveDirectory"}}
    rules = [{"name": "office", "properties": {"startIpAddress": "203.0.113.1", "endIpAddress": "203.0.113.254"}}]
    if bad(rnd, 0.3):
        rules.append({"name": "AllowAllWindowsAzureIps", "properties": {"startIpAddress": "0.0.0.0", "endIpAddress": "0.0.0.0"}})
    if bad(rnd, 0.05):
        rules.append({"name": "everyone", "properties": {"startIpAddress": "0.0.0.0", "endIpAddress": "255.255.255.255"}})
    r["related"] = {"auditingSettings/default": {"properties": {"state": "Disabled" if bad(rnd, 0.3) else "Enabled", "retentionDays": 90}},
                    "firewallRules": rules,
                    "securityAlertPolicies/Default": {"properties": {"state": "Disabled" if bad(rnd, 0.4) else "Enabled"}}}
    return r


def keyvault(rnd, i):
    r = base(rnd, i, "Microsoft.KeyVault/vaults", "kv")
    r["properties"] = {"tenantId": "72f988bf-0000-0000-0000-2d7cd011db47", "sku": {"family": "A", "name": "standard"},
                       "enableSoftDelete": True, "enablePurgeProtection": True if not bad(rnd, 0.4) else None,
                       "enableRbacAuthorization": not bad(rnd, 0.4),
                       "publicNetworkAccess": "Enabled" if bad(rnd, 0.5) else "Disabled",
                       "networkAcls": {"defaultAction": "Allow" if bad(rnd, 0.5) else "Deny", "bypass": "AzureServices"}}
    if r["properties"]["enablePurgeProtection"] is None:
        del r["properties"]["enablePurgeProtection"]
    r["related"] = {"providers/Microsoft.Insights/diagnosticSettings": [] if bad(rnd, 0.4) else [
        {"name": "to-law", "properties": {"workspaceId": "/subscriptions/x/law", "logs": [{"categoryGroup": "audit", "enabled": True}]}}]}
    return r


def site(rnd, i):
    r = base(rnd, i, "Microsoft.Web/sites", "app")
    r["kind"] = "app,linux" if rnd.random() < 0.8 else "functionapp"
    r["properties"] = {"httpsOnly": not bad(rnd, 0.2), "clientCertEnabled": False, "publicNetworkAccess": "Enabled",
                       "state": "Running", "siteConfig": None}
    if not bad(rnd, 0.4):
        r["identity"] = {"type": "SystemAssigned"}
    r["related"] = {"config/web": {"name": "web", "properties": {
        "minTlsVersion": "1.0" if bad(rnd, 0.1) else "1.2", "scmMinTlsVersion": "1.2",
        "ftpsState": "AllAllowed" if bad(rnd, 0.3) else "Disabled", "remoteDebuggingEnabled": bad(rnd, 0.05),
        "http20Enabled": not bad(rnd, 0.5)}}}
    return r


def aks(rnd, i):
    r = base(rnd, i, "Microsoft.ContainerService/managedClusters", "aks")
    r["identity"] = {"type": "SystemAssigned"}
    r["properties"] = {"kubernetesVersion": "1.30.4", "enableRBAC": True, "disableLocalAccounts": not bad(rnd, 0.5),
                       "apiServerAccessProfile": {"enablePrivateCluster": not bad(rnd, 0.5)},
                       "addonProfiles": {"azurepolicy": {"enabled": not bad(rnd, 0.5)}},
                       "autoUpgradeProfile": {"nodeOSUpgradeChannel": "None" if bad(rnd, 0.3) else "NodeImage", "upgradeChannel": "patch"},
                       "networkProfile": {"networkPlugin": "azure", "networkPolicy": "calico" if not bad(rnd, 0.4) else None},
                       "oidcIssuerProfile": {"enabled": True}, "securityProfile": {"workloadIdentity": {"enabled": True}},
                       "aadProfile": {"managed": True, "enableAzureRBAC": True}}
    return r


def acr(rnd, i):
    r = base(rnd, i, "Microsoft.ContainerRegistry/registries", "acr")
    r["sku"] = {"name": rnd.choice(["Basic", "Standard", "Premium"]), "tier": "Standard"}
    r["properties"] = {"adminUserEnabled": bad(rnd, 0.3), "publicNetworkAccess": "Enabled" if bad(rnd, 0.5) else "Disabled",
                       "anonymousPullEnabled": bad(rnd, 0.05), "networkRuleSet": {"defaultAction": "Allow", "ipRules": []},
                       "policies": {"retentionPolicy": {"status": "disabled", "days": 7}, "exportPolicy": {"status": "enabled"}}}
    return r


def pg(rnd, i):
    r = base(rnd, i, "Microsoft.DBforPostgreSQL/flexibleServers", "pg")
    r["sku"] = {"name": "Standard_D2ds_v4", "tier": "GeneralPurpose"}
    r["properties"] = {"version": "16", "network": {"publicNetworkAccess": "Enabled" if bad(rnd, 0.5) else "Disabled"},
                       "backup": {"geoRedundantBackup": "Disabled" if bad(rnd, 0.5) else "Enabled", "backupRetentionDays": 7},
                       "highAvailability": {"mode": "Disabled"}}
    r["related"] = {"configurations/require_secure_transport": {"properties": {"value": "off" if bad(rnd, 0.1) else "on"}},
                    "firewallRules": []}
    return r


def cosmos(rnd, i):
    r = base(rnd, i, "Microsoft.DocumentDB/databaseAccounts", "cosmos")
    r["kind"] = "GlobalDocumentDB"
    r["properties"] = {"publicNetworkAccess": "Enabled", "ipRules": [] if bad(rnd, 0.4) else [{"ipAddressOrRange": "203.0.113.0/24"}],
                       "isVirtualNetworkFilterEnabled": False, "disableLocalAuth": not bad(rnd, 0.5),
                       "disableKeyBasedMetadataWriteAccess": not bad(rnd, 0.5), "minimalTlsVersion": "Tls12"}
    return r


def other(rnd, i):
    kind = rnd.choice([("Microsoft.Network/privateDnsZones", "zone"), ("Microsoft.ManagedIdentity/userAssignedIdentities", "id"),
                       ("Microsoft.Network/privateEndpoints", "pe")])
    r = base(rnd, i, kind[0], kind[1])
    r["properties"] = {"provisioningState": "Succeeded"}
    return r


# (weight, generator): a mix where networking and compute dominate, as in real estates.
MIX = [(15, storage), (15, nsg), (5, vnet), (10, nic), (5, pip), (10, vm), (10, disk), (3, sql), (3, keyvault),
       (8, site), (1, aks), (2, acr), (2, pg), (2, cosmos), (9, other)]


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    out = sys.argv[2] if len(sys.argv) > 2 else f"target/synth/tenant-{count}.jsonl"
    rnd = random.Random(20261128)
    gens = [g for w, g in MIX for _ in range(w)]
    import os
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out + ".tmp", "w") as f:
        for i in range(count):
            f.write(json.dumps(rnd.choice(gens)(rnd, i), separators=(",", ":")))
            f.write("\n")
    os.replace(out + ".tmp", out)
    print(f"wrote {count} resources to {out} (subscription {SUB})")


if __name__ == "__main__":
    main()
