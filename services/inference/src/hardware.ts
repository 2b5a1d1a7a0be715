/**
 * Hardware detection for the declared class: CPU vendor and features from /proc/cpuinfo;
 * GPU from the engine (node-llama-cpp reports what it can offload to). A declared GPU class the
 * process cannot use is refused unless INFERENCE_ALLOW_HARDWARE_MISMATCH is set.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { HardwareClass } from '../../../gen/xerotier/inference/v1/inference_service.js';
import type { HardwareClassName } from './config.js';

export interface CpuInfo {
  vendor: 'amd' | 'intel' | 'other';
  model: string;
  cores: number;
  features: string[];
}

const INTERESTING = ['avx2', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'amx_tile', 'fma', 'f16c'];

export function detectCpu(): CpuInfo {
  const model = os.cpus()[0]?.model ?? 'unknown';
  let vendorId = '';
  let flags: string[] = [];
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8');
    vendorId = /vendor_id\s*:\s*(\S+)/.exec(text)?.[1] ?? '';
    flags = (/flags\s*:\s*(.*)/.exec(text)?.[1] ?? '').split(/\s+/);
  } catch {
    // Not Linux: fall back to the model string.
  }
  const basis = `${vendorId} ${model}`.toLowerCase();
  const vendor = basis.includes('amd') ? 'amd' : basis.includes('intel') ? 'intel' : 'other';
  return { vendor, model, cores: os.availableParallelism(), features: INTERESTING.filter((f) => flags.includes(f)) };
}

export const hardwareClassToProto: Record<HardwareClassName, HardwareClass> = {
  cpu: HardwareClass.HARDWARE_CLASS_CPU,
  'cpu-amd': HardwareClass.HARDWARE_CLASS_CPU_AMD,
  'cpu-intel': HardwareClass.HARDWARE_CLASS_CPU_INTEL,
  'gpu-nvidia': HardwareClass.HARDWARE_CLASS_GPU_NVIDIA,
  'gpu-amd': HardwareClass.HARDWARE_CLASS_GPU_AMD,
  'gpu-intel': HardwareClass.HARDWARE_CLASS_GPU_INTEL,
  'self-hosted': HardwareClass.HARDWARE_CLASS_SELF_HOSTED,
};

/** Why the declared class does not match the detected hardware, or undefined when it does. */
export function hardwareMismatch(declared: HardwareClassName, cpu: CpuInfo, gpu: string | false): string | undefined {
  switch (declared) {
    case 'cpu':
    case 'self-hosted':
      return undefined;
    case 'cpu-amd':
    case 'cpu-intel': {
      const want = declared === 'cpu-amd' ? 'amd' : 'intel';
      return cpu.vendor === want ? undefined : `declared ${declared} but the CPU is ${cpu.vendor} (${cpu.model})`;
    }
    case 'gpu-nvidia':
      return gpu === 'cuda' ? undefined : `declared gpu-nvidia but no CUDA device is usable (gpu: ${String(gpu)})`;
    case 'gpu-amd':
    case 'gpu-intel':
      return gpu === 'vulkan' ? undefined : `declared ${declared} but no Vulkan device is usable (gpu: ${String(gpu)})`;
  }
}

export function describeHardware(cpu: CpuInfo, gpu: string | false): string {
  return `cpu=${cpu.vendor} "${cpu.model}" cores=${cpu.cores} features=${cpu.features.join(',') || 'none'} gpu=${gpu || 'none'}`;
}
