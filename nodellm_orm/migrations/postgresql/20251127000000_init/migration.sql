-- CreateTable
CREATE TABLE "LlmChat" (
    "id" TEXT NOT NULL,
    "model" TEXT,
    "provider" TEXT,
    "instructions" TEXT,
    "metadata" JSONB,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "LlmChat_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "LlmAgentSession" (
    "id" TEXT NOT NULL,
    "agentClass" TEXT NOT NULL,
    "chatId" TEXT NOT NULL,
    "metadata" JSONB,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "LlmAgentSession_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "LlmMessage" (
    "id" TEXT NOT NULL,
    "chatId" TEXT NOT NULL,
    "role" TEXT NOT NULL,
    "content" TEXT,
    "contentRaw" TEXT,
    "reasoning" TEXT,
    "thinkingText" TEXT,
    "thinkingSignature" TEXT,
    "thinkingTokens" INTEGER,
    "inputTokens" INTEGER,
    "outputTokens" INTEGER,
    "modelId" TEXT,
    "provider" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "LlmMessage_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "LlmToolCall" (
    "id" TEXT NOT NULL,
    "messageId" TEXT NOT NULL,
    "toolCallId" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "arguments" TEXT NOT NULL,
    "thought" TEXT,
    "thoughtSignature" TEXT,
    "result" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "LlmToolCall_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "LlmRequest" (
    "id" TEXT NOT NULL,
    "chatId" TEXT NOT NULL,
    "messageId" TEXT,
    "provider" TEXT NOT NULL,
    "model" TEXT NOT NULL,
    "statusCode" INTEGER NOT NULL,
    "duration" INTEGER NOT NULL,
    "inputTokens" INTEGER NOT NULL,
    "outputTokens" INTEGER NOT NULL,
    "cost" DOUBLE PRECISION,
    "correctionRounds" INTEGER,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "LlmRequest_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "LlmAgentSession_chatId_key" ON "LlmAgentSession"("chatId");

-- CreateIndex
CREATE INDEX "LlmAgentSession_agentClass_idx" ON "LlmAgentSession"("agentClass");

-- CreateIndex
CREATE INDEX "LlmAgentSession_createdAt_idx" ON "LlmAgentSession"("createdAt");

-- CreateIndex
CREATE INDEX "LlmMessage_chatId_idx" ON "LlmMessage"("chatId");

-- CreateIndex
CREATE INDEX "LlmMessage_createdAt_idx" ON "LlmMessage"("createdAt");

-- CreateIndex
CREATE INDEX "LlmToolCall_messageId_idx" ON "LlmToolCall"("messageId");

-- CreateIndex
CREATE INDEX "LlmToolCall_createdAt_idx" ON "LlmToolCall"("createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "LlmToolCall_messageId_toolCallId_key" ON "LlmToolCall"("messageId", "toolCallId");

-- CreateIndex
CREATE INDEX "LlmRequest_chatId_idx" ON "LlmRequest"("chatId");

-- CreateIndex
CREATE INDEX "LlmRequest_createdAt_idx" ON "LlmRequest"("createdAt");

-- AddForeignKey
ALTER TABLE "LlmAgentSession" ADD CONSTRAINT "LlmAgentSession_chatId_fkey" FOREIGN KEY ("chatId") REFERENCES "LlmChat"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "LlmMessage" ADD CONSTRAINT "LlmMessage_chatId_fkey" FOREIGN KEY ("chatId") REFERENCES "LlmChat"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "LlmToolCall" ADD CONSTRAINT "LlmToolCall_messageId_fkey" FOREIGN KEY ("messageId") REFERENCES "LlmMessage"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "LlmRequest" ADD CONSTRAINT "LlmRequest_chatId_fkey" FOREIGN KEY ("chatId") REFERENCES "LlmChat"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "LlmRequest" ADD CONSTRAINT "LlmRequest_messageId_fkey" FOREIGN KEY ("messageId") REFERENCES "LlmMessage"("id") ON DELETE CASCADE ON UPDATE CASCADE;
