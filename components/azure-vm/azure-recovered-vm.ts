/**
 * `AzureRecoveredVm`: the Azure VM of a Lifeboat failover to Azure
 * (docs/azure-failover.md §7). Takes the VM record a failover leaves in the
 * protected item's `status.azureVm` — blob URLs of the exported disks, VM
 * name, size, NICs on the mapped virtual network and subnet, public IP — and
 * creates, in a real subscription:
 *
 * - one managed disk per exported blob (`createOption: Import`, `sourceUri`
 *   the blob, `storageAccountId` the replica account), the first the OS disk;
 * - an optional public IP (Standard, static) for the first NIC;
 * - one NIC per record NIC on `<vnet>/subnets/<subnet>`;
 * - the VM, attaching the disks (`createOption: Attach`) and the NICs.
 *
 * Failure: Pulumi's own. A failed `up` leaves the resources it created, and
 * the next `up` continues; `destroy` removes them (the blobs stay: they are
 * the failover's, removed by Lifeboat with the failover VM).
 */

import * as compute from '@pulumi/azure-native/compute';
import * as network from '@pulumi/azure-native/network';
import * as pulumi from '@pulumi/pulumi';

/** The record of `status.azureVm` (docs/azure-failover.md §4). */
export interface AzureFailoverRecord {
  /** The VM's name. */
  readonly name: string;
  /** Azure VM size (`targetVm.azureVmSize`); null when the item names none. */
  readonly size: string | null;
  /** Give the VM a public IP address. */
  readonly publicIp: boolean;
  /** NICs in order: the mapped virtual network and its subnet. */
  readonly nics: readonly { readonly name: string; readonly network: string; readonly subnet?: string }[];
  /** Disks in order (the first is the OS disk): the exported fixed-VHD blob of each. */
  readonly disks: readonly { readonly id: string; readonly sizeBytes: number; readonly blobUrl: string }[];
  /** From the policy's azure settings, if given there. */
  readonly resourceGroup?: string;
  readonly region?: string;
  readonly subscriptionId?: string;
}

export interface AzureRecoveredVmArgs {
  /** The failover's VM record (read from the vault before the program runs). */
  readonly failover: AzureFailoverRecord;
  /** Resource group of the VM, disks and NICs. @default the record's `resourceGroup` (required somewhere) */
  readonly resourceGroupName?: pulumi.Input<string>;
  /** Region. @default the record's `region` (required somewhere) */
  readonly location?: pulumi.Input<string>;
  /** Resource id of the storage account holding the blobs (required by Azure to import a blob). */
  readonly storageAccountId: pulumi.Input<string>;
  /** Subscription of the virtual networks. @default the record's `subscriptionId` (required somewhere) */
  readonly subscriptionId?: pulumi.Input<string>;
  /** Resource group of the virtual networks. @default `resourceGroupName` */
  readonly networkResourceGroupName?: pulumi.Input<string>;
  /** VM size when the record has none. @default 'Standard_D2s_v5' */
  readonly defaultVmSize?: string;
  /** OS of the first disk. @default 'Linux' */
  readonly osType?: 'Linux' | 'Windows';
  /** Hyper-V generation of the disks (generation 1 VMs replicate as V1). @default 'V1' */
  readonly hyperVGeneration?: 'V1' | 'V2';
  /** Managed disk SKU. @default 'Premium_LRS' */
  readonly diskSku?: string;
}

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`AzureRecoveredVm: ${what} is neither in the failover record nor in the arguments`);
  return v;
}

/** The VM of a failover to Azure, with its disks, NICs and optional public IP. */
export class AzureRecoveredVm extends pulumi.ComponentResource {
  /** The VM's resource id. */
  readonly vmId: pulumi.Output<string>;
  /** The managed disks, in the record's order. */
  readonly diskIds: pulumi.Output<string>[];
  /** The NICs' resource ids, in order. */
  readonly nicIds: pulumi.Output<string>[];
  /** The public IP address, when one was asked for. */
  readonly publicIpAddress: pulumi.Output<string | undefined>;

  constructor(name: string, args: AzureRecoveredVmArgs, opts?: pulumi.ComponentResourceOptions) {
    super('lifeboat:azure:AzureRecoveredVm', name, {}, opts);
    const f = args.failover;
    if (f.disks.length === 0) throw new Error('AzureRecoveredVm: the failover record has no disk');
    if (f.disks.some((d) => typeof d.blobUrl !== 'string' || d.blobUrl === '')) throw new Error('AzureRecoveredVm: a disk of the failover record has no blob URL');
    const rg = args.resourceGroupName ?? need(f.resourceGroup, 'resourceGroupName');
    const location = args.location ?? need(f.region, 'location');
    const subscription = args.subscriptionId ?? need(f.subscriptionId, 'subscriptionId');
    const netRg = args.networkResourceGroupName ?? rg;
    const osType = args.osType ?? 'Linux';
    const parent = { parent: this };

    const disks = f.disks.map((d, i) => new compute.Disk(`${name}-disk-${d.id}`, {
      resourceGroupName: rg,
      location,
      diskName: `${f.name}-${d.id}`,
      sku: { name: args.diskSku ?? 'Premium_LRS' },
      ...(i === 0 ? { osType } : {}),
      hyperVGeneration: args.hyperVGeneration ?? 'V1',
      creationData: { createOption: 'Import', sourceUri: d.blobUrl, storageAccountId: args.storageAccountId },
    }, parent));

    const pip = f.publicIp ? new network.PublicIPAddress(`${name}-pip`, {
      resourceGroupName: rg,
      location,
      publicIpAddressName: `${f.name}-pip`,
      sku: { name: 'Standard' },
      publicIPAllocationMethod: 'Static',
    }, parent) : undefined;

    const nics = f.nics.map((n, i) => new network.NetworkInterface(`${name}-${n.name}`, {
      resourceGroupName: rg,
      location,
      networkInterfaceName: `${f.name}-${n.name}`,
      ipConfigurations: [{
        name: 'ipconfig1',
        privateIPAllocationMethod: 'Dynamic',
        subnet: { id: pulumi.interpolate`/subscriptions/${subscription}/resourceGroups/${netRg}/providers/Microsoft.Network/virtualNetworks/${n.network}/subnets/${n.subnet ?? 'default'}` },
        ...(i === 0 && pip !== undefined ? { publicIPAddress: { id: pip.id } } : {}),
      }],
    }, parent));

    const vm = new compute.VirtualMachine(`${name}-vm`, {
      resourceGroupName: rg,
      location,
      vmName: f.name,
      hardwareProfile: { vmSize: f.size ?? args.defaultVmSize ?? 'Standard_D2s_v5' },
      storageProfile: {
        osDisk: { createOption: 'Attach', osType, managedDisk: { id: disks[0]!.id } },
        dataDisks: disks.slice(1).map((d, i) => ({ lun: i, createOption: 'Attach', managedDisk: { id: d.id } })),
      },
      networkProfile: { networkInterfaces: nics.map((n, i) => ({ id: n.id, primary: i === 0 })) },
    }, parent);

    this.vmId = vm.id;
    this.diskIds = disks.map((d) => d.id);
    this.nicIds = nics.map((n) => n.id);
    this.publicIpAddress = pip === undefined ? pulumi.output(undefined) : pip.ipAddress;
    this.registerOutputs({ vmId: this.vmId, diskIds: this.diskIds, nicIds: this.nicIds, publicIpAddress: this.publicIpAddress });
  }
}
