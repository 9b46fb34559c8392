-- Upgrade a database at the @node-llm/orm 0.4 schema (no LlmAgentSession model, no
-- LlmRequest.correctionRounds) to the current one: what Prisma Migrate's diff between the two
-- schema.prisma files amounts to, in its statement order.

-- AlterTable
ALTER TABLE "LlmRequest" ADD COLUMN "correctionRounds" INTEGER;

-- CreateTable
CREATE TABLE "LlmAgentSession" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "agentClass" TEXT NOT NULL,
    "chatId" TEXT NOT NULL,
    "metadata" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    CONSTRAINT "LlmAgentSession_chatId_fkey" FOREIGN KEY ("chatId") REFERENCES "LlmChat" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE UNIQUE INDEX "LlmAgentSession_chatId_key" ON "LlmAgentSession"("chatId");

-- CreateIndex
CREATE INDEX "LlmAgentSession_agentClass_idx" ON "LlmAgentSession"("agentClass");

-- CreateIndex
CREATE INDEX "LlmAgentSession_createdAt_idx" ON "LlmAgentSession"("createdAt");
