@echo off
echo installing %*
