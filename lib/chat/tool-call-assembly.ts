/**
 * Tool calls arrive in pieces (ToolCallDelta: id and name first, then argument fragments); this
 * puts them together again, in index order, for a whole (non-streamed) answer.
 */
import type { ToolCall } from './tools.js';

export interface ToolCallPiece {
  index: number;
  id?: string | undefined;
  name?: string | undefined;
  arguments: string;
}

export interface ToolCallAssembly {
  add(piece: ToolCallPiece): void;
  calls(): ToolCall[];
}

export function createToolCallAssembly(): ToolCallAssembly {
  const byIndex = new Map<number, ToolCall>();
  return {
    add(piece) {
      const call = byIndex.get(piece.index) ?? { id: '', name: '', arguments: '' };
      if (piece.id) call.id = piece.id;
      if (piece.name) call.name = piece.name;
      call.arguments += piece.arguments;
      byIndex.set(piece.index, call);
    },
    calls: () => [...byIndex.entries()].sort(([a], [b]) => a - b).map(([, call]) => call),
  };
}
